// ModelConfig: the shape and hyper-parameters of a decoder-only transformer, independent of
// file format. Every field that changes the maths is here; a family's hparams reader fills
// the ones it implements and refuses keys that would need the others.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rhead {

// Which pairs of a head's dimensions RoPE rotates together.
//  adjacent: (2i, 2i+1) — Meta's original layout; llama.cpp GGUF (llama arch) and llama2.c store
//            Q/K rows permuted to this layout.
//  half:     (i, i + head_dim/2) — the Hugging Face layout ("rotate_half"), and GGUF qwen2.
// The two layouts differ by the same permutation of Q and K rows within each head, so q·k,
// attention weights and logits are identical: rhead runs each file in its own layout instead
// of copying and permuting mmapped (possibly quantized) weights.
enum class RopePairing { adjacent, half };

// linear: inverse frequencies / factor. llama3: long wavelengths / factor, short kept, band
// blended. longrope (Phi-3 "longrope"/"su"): per-pair divisors, the short set when the session
// holds at most rope_original_ctx positions, else the long set; cos/sin scaled by
// rope_attn_factor (applied as a factor rope_attn_factor^2 on the attention scores).
enum class RopeScaling { none, linear, llama3, longrope };

// MLP gate activation: silu (SwiGLU) or tanh-approximated GELU (GeGLU, Gemma).
enum class Activation { silu, gelu_tanh };

struct ModelConfig {
  std::string family = "llama";        // FamilyDef::name of its family (model/family.h)
  std::string architecture = "llama";  // as named by the file
  int n_layer = 0;
  int n_embd = 0;     // model width
  int n_ff = 0;       // MLP hidden width (dense layers)
  int n_head = 0;     // query heads
  int n_kv_head = 0;  // key/value heads (GQA when < n_head)
  int head_dim = 0;
  int n_vocab = 0;
  int n_ctx_train = 0;  // trained context length
  float rms_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopePairing rope_pairing = RopePairing::half;
  RopeScaling rope_scaling = RopeScaling::none;
  float rope_factor = 1.0f;                                  // linear and llama3
  float rope_low_freq_factor = 1.0f;                         // llama3
  float rope_high_freq_factor = 4.0f;                        // llama3
  int rope_original_ctx = 8192;                              // llama3, longrope: original_max_position_embeddings
  float rope_attn_factor = 1.0f;                             // longrope: cos/sin magnitude
  std::vector<float> rope_short_factors, rope_long_factors;  // longrope: [head_dim / 2] divisors each
  bool tied_embeddings = false;
  bool qkv_bias = false;  // q/k/v projections carry biases
  bool o_bias = false;    // the output projection carries a bias (llama attention_bias)

  // Mixture of experts (n_expert > 0): every layer routes each token to n_expert_used of
  // n_expert SwiGLU experts of width n_ff_expert.
  int n_expert = 0;
  int n_expert_used = 0;
  int n_ff_expert = 0;
  // Routing weights: softmax over all router logits, then the top n_expert_used; when true they
  // are renormalized to sum 1 (= a softmax over the chosen experts' logits, as Mixtral does;
  // Qwen3-MoE's norm_topk_prob).
  bool expert_weights_norm = true;

  bool qk_norm = false;     // Qwen3: RMSNorm over each head of q and k before RoPE
  bool post_norms = false;  // Gemma-2: RMSNorm on the attention and MLP outputs before the residual add
  Activation activation = Activation::silu;
  float embd_scale = 0.0f;     // 0: none; else the embedding rows are multiplied by it (Gemma: sqrt(n_embd))
  float attn_scale = 0.0f;     // 0: 1/sqrt(head_dim); else the score scale (Gemma: query_pre_attn_scalar^-1/2)
  float attn_softcap = 0.0f;   // 0: none; else score -> cap * tanh(score / cap)
  float final_softcap = 0.0f;  // 0: none; else logit -> cap * tanh(logit / cap)
  // Sliding-window attention: layer l sees keys i - j < sliding_window when
  // l % sliding_window_period == 0 (period 1: every layer; Gemma-2: 2, the even layers).
  int64_t sliding_window = 0;
  int sliding_window_period = 1;

  int q_dim() const { return n_head * head_dim; }
  int kv_dim() const { return n_kv_head * head_dim; }
  int group_size() const { return n_head / n_kv_head; }  // query heads per KV head
  int64_t layer_window(int layer) const {
    return sliding_window > 0 && layer % sliding_window_period == 0 ? sliding_window : 0;
  }
};

const char* rope_scaling_name(RopeScaling s);

}  // namespace rhead

// ModelConfig: the shape and hyper-parameters of a Llama-family model, independent of file format.
#pragma once
#include <cstdint>
#include <string>

namespace rhead {

enum class Family { llama, qwen2 };

// Which pairs of a head's dimensions RoPE rotates together.
//  adjacent: (2i, 2i+1) — Meta's original layout; llama.cpp GGUF (llama arch) and llama2.c store
//            Q/K rows permuted to this layout.
//  half:     (i, i + head_dim/2) — the Hugging Face layout ("rotate_half"), and GGUF qwen2.
// The two layouts differ by the same permutation of Q and K rows within each head, so q·k,
// attention weights and logits are identical: rhead runs each file in its own layout instead
// of copying and permuting mmapped (possibly quantized) weights.
enum class RopePairing { adjacent, half };

enum class RopeScaling { none, linear, llama3 };

struct ModelConfig {
  Family family = Family::llama;
  std::string architecture = "llama";  // as named by the file
  int n_layer = 0;
  int n_embd = 0;      // model width
  int n_ff = 0;        // MLP hidden width
  int n_head = 0;      // query heads
  int n_kv_head = 0;   // key/value heads (GQA when < n_head)
  int head_dim = 0;
  int n_vocab = 0;
  int n_ctx_train = 0; // trained context length
  float rms_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopePairing rope_pairing = RopePairing::half;
  RopeScaling rope_scaling = RopeScaling::none;
  float rope_factor = 1.0f;             // linear and llama3
  float rope_low_freq_factor = 1.0f;    // llama3
  float rope_high_freq_factor = 4.0f;   // llama3
  int rope_original_ctx = 8192;         // llama3: original_max_position_embeddings
  bool tied_embeddings = false;
  bool qkv_bias = false;

  int q_dim() const { return n_head * head_dim; }
  int kv_dim() const { return n_kv_head * head_dim; }
  int group_size() const { return n_head / n_kv_head; }  // query heads per KV head
};

const char* family_name(Family f);
const char* rope_scaling_name(RopeScaling s);

}  // namespace rhead

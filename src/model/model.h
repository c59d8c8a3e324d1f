// Model: a config plus weight views. Weights point into memory-mapped files (or into
// buffers the Model owns, for small converted tensors such as norms); a Model is immutable
// after loading and shared by any number of Sessions.
#pragma once
#include <any>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/config.h"
#include "ops/weight.h"

namespace rhead {

// One layer's weights. Which of the optional ones are present is the family's business (its
// tensor table); the blocks use whatever is non-empty.
struct LayerWeights {
  std::vector<float> attn_norm;                    // [n_embd]
  Weight wq, wk, wv, wo;                           // [q_dim, n_embd], [kv_dim, n_embd] x2, [n_embd, q_dim]
  std::vector<float> bq, bk, bv;                   // [q_dim], [kv_dim] x2: q/k/v biases (qwen2), empty otherwise
  std::vector<float> bo;                           // [n_embd]: output-projection bias, empty otherwise
  std::vector<float> q_norm, k_norm;               // [head_dim]: per-head QK-norm (qwen3), empty otherwise
  std::vector<float> post_attn_norm;               // [n_embd]: norm of the attention output (gemma2)
  std::vector<float> ffn_norm;                     // [n_embd]
  std::vector<float> post_ffn_norm;                // [n_embd]: norm of the MLP output (gemma2)
  Weight w_gate, w_up, w_down;                     // dense MLP: [n_ff, n_embd] x2, [n_embd, n_ff]; absent in MoE layers
  Weight router;                                   // MoE: [n_expert, n_embd] router logits
  std::vector<Weight> exp_gate, exp_up, exp_down;  // MoE: n_expert x [n_ff_expert, n_embd] x2, [n_embd, n_ff_expert]
};

// Calls f(const Weight&) on every matrix of a layer that is present (rows > 0).
template <typename F>
void for_each_layer_weight(const LayerWeights& l, F&& f) {
  for (const Weight* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down, &l.router})
    if (w->rows > 0) f(*w);
  for (const auto* experts : {&l.exp_gate, &l.exp_up, &l.exp_down})
    for (const Weight& w : *experts) f(w);
}

struct Model {
  ModelConfig config;
  std::string source;                    // path the model was loaded from
  std::string format;                    // "gguf", "hf", "llama2c", "builtin"
  Weight tok_embd;                       // [n_vocab, n_embd]
  std::vector<float> output_norm;        // [n_embd]
  Weight output;                         // [n_vocab, n_embd]; equals tok_embd when tied
  std::vector<float> rope_freq_factors;  // optional per-pair divisors (GGUF rope_freqs.weight)
  std::vector<LayerWeights> layers;
  std::vector<std::any> keep_alive;  // mapped files and owned buffers the Weights point into

  int64_t n_params() const;
  int64_t weight_bytes() const;
};

}  // namespace rhead

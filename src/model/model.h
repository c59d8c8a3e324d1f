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

struct LayerWeights {
  std::vector<float> attn_norm;  // [n_embd]
  Weight wq, wk, wv, wo;         // [q_dim, n_embd], [kv_dim, n_embd] x2, [n_embd, q_dim]
  std::vector<float> bq, bk, bv; // qwen2 biases, empty otherwise
  std::vector<float> ffn_norm;   // [n_embd]
  Weight w_gate, w_up, w_down;   // [n_ff, n_embd] x2, [n_embd, n_ff]
};

struct Model {
  ModelConfig config;
  std::string source;    // path the model was loaded from
  std::string format;    // "gguf", "hf", "llama2c", "builtin"
  Weight tok_embd;       // [n_vocab, n_embd]
  std::vector<float> output_norm;  // [n_embd]
  Weight output;         // [n_vocab, n_embd]; equals tok_embd when tied
  std::vector<float> rope_freq_factors;  // optional per-pair divisors (GGUF rope_freqs.weight)
  std::vector<LayerWeights> layers;
  std::vector<std::any> keep_alive;  // mapped files and owned buffers the Weights point into

  int64_t n_params() const;
  int64_t weight_bytes() const;
};

}  // namespace rhead

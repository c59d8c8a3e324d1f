// Activations: the buffers one forward chunk of T tokens writes, in backend memory (host for
// the CPU backend, GPU for CUDA), with the shape of each beside it. A Session keeps one and
// grows it to the largest chunk it has seen; the families' blocks (model/blocks.h) read and
// write it through the Backend.
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"
#include "ops/backend.h"

namespace rhead {

struct Activations {
  int64_t capacity = 0;     // tokens the buffers hold
  int64_t logit_rows = 0;   // rows `logits` holds
  float* x = nullptr;       // [T, n_embd] residual stream
  float* xn = nullptr;      // [T, n_embd] normed input of the current block
  float* y = nullptr;       // [T, n_embd] output of a block (attention or feed-forward)
  float* q = nullptr;       // [T, n_head, head_dim] (RoPE applied in place)
  float* k = nullptr;       // [T, n_kv_head, head_dim]
  float* v = nullptr;       // [T, n_kv_head, head_dim]
  float* att = nullptr;     // [T, n_head, head_dim] attention output per head
  float* gate = nullptr;    // [T, n_ff] (MoE: [tokens routed to one expert, n_ff_expert])
  float* up = nullptr;      // [T, n_ff] (MoE: as gate)
  float* logits = nullptr;  // [logit_rows, n_vocab]
  // Mixture of experts only (null otherwise):
  float* router = nullptr;         // [T, n_expert] router logits
  float* xe = nullptr;             // [T, n_embd] rows routed to one expert, gathered
  float* ye = nullptr;             // [T, n_embd] that expert's output rows
  double* moe_sum = nullptr;       // [T, n_embd] weighted sum of the experts' outputs, in double
  std::vector<float> router_host;  // [T, n_expert] host copy of router, for the routing decision

  Activations() = default;
  Activations(const Activations&) = delete;
  Activations& operator=(const Activations&) = delete;
  ~Activations() { release(); }

  // Makes room for `n_tokens` tokens and `n_logit_rows` rows of logits (never shrinks).
  void reserve(Backend& backend, const ModelConfig& c, int64_t n_tokens, int64_t n_logit_rows);
  void release();

 private:
  Backend* backend_ = nullptr;
  void reserve_logits(const ModelConfig& c, int64_t rows);
};

}  // namespace rhead

// The shared blocks a family's layer forward is assembled from: RMSNorm, the attention block
// (projections, biases, QK-norm, RoPE, the probe kernel through the Session), the gated MLP
// (SwiGLU / GeGLU) and the mixture of experts. Each block reads and writes [n_tokens, width]
// row-major f32 buffers of the Session's backend (host memory on the CPU, device memory on
// CUDA) and runs every op through that Backend; a family's forward (model/arch_*.cpp) calls
// them in its order.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "model/activations.h"
#include "model/model.h"
#include "ops/backend.h"

namespace rhead {

// The attention variant of one layer, passed to the kernel.
struct AttentionVariant {
  int64_t window = 0;    // 0: full causal attention; else key j visible to query i iff i - j < window
  float scale = 0.0f;    // 0: 1/sqrt(head_dim)
  float softcap = 0.0f;  // 0: none
};

// Session's part of attention for one layer: appends k and v ([T, n_kv_head, head_dim], RoPE
// applied) to its KV cache at the chunk's positions and runs the probe kernel on q
// ([T, n_head, head_dim]) -> out [T, n_head, head_dim], with probes and interventions.
// q, k, v, out: backend memory.
using AttendFn = std::function<void(int layer, const float* q, const float* k, const float* v, float* out,
                                    const AttentionVariant& variant)>;

// What a family's layer forward reads and writes for one chunk of n_tokens tokens.
struct LayerContext {
  const Model& model;
  Backend& backend;  // runs every op; owns the memory of x and act
  int64_t n_tokens;
  int64_t pos0;  // absolute position of the chunk's first token
  float* x;      // [n_tokens, n_embd] residual stream (backend memory)
  Activations& act;
  std::span<const float> inv_freq;  // [head_dim / 2] RoPE inverse frequencies of this session (host)
  AttendFn attend;
  const ModelConfig& config() const { return model.config; }
  const LayerWeights& layer(int l) const { return model.layers[l]; }
};

// out[t] = in[t] / rms(in[t]) * w for the chunk's rows; in and out may alias.
void norm_rows(const LayerContext& ctx, const float* in, const std::vector<float>& w, float* out);
// x += y over the chunk's residual stream.
void add_residual(LayerContext& ctx, const float* y);
// y = Wo · attention(rope(qk_norm(Wq·xn + bq)), rope(qk_norm(Wk·xn + bk)), Wv·xn + bv) + bo.
// xn, y: [T, n_embd]. Window, scale and soft-cap come from the config for this layer.
void attention_block(LayerContext& ctx, int layer, const float* xn, float* y);
// y = W_down · (act(W_gate·xn) * W_up·xn), act = silu or tanh-GELU per the config.
void mlp_block(LayerContext& ctx, const LayerWeights& w, const float* xn, float* y);
// y = sum over the top n_expert_used experts e of weight_e · SwiGLU_e(xn); weights from the
// softmax of the router logits (renormalized over the chosen when expert_weights_norm). The
// routing is decided on the host from the router logits; each chosen expert runs on the
// backend over the rows routed to it.
void moe_block(LayerContext& ctx, const LayerWeights& w, const float* xn, float* y);
// The feed-forward of a layer: moe_block when the layer has experts, else mlp_block.
void ffn_block(LayerContext& ctx, const LayerWeights& w, const float* xn, float* y);

// The Llama pre-norm layer, shared by llama, qwen2, qwen3, mixtral, qwen3moe and phi3:
//   x = x + attention_block(norm(x; attn_norm));  x = x + ffn_block(norm(x; ffn_norm)).
void pre_norm_layer(LayerContext& ctx, int layer);

}  // namespace rhead

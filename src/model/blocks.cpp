// Shared blocks of the layer forwards (see blocks.h). Every op goes through ctx.backend; the
// buffers are the Session's Activations, sized for the chunk before the first layer runs.
#include "model/blocks.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace rhead {

namespace {

void gate_act_mul(Backend& be, Activation a, float* g, const float* u, int64_t n) {
  if (a == Activation::gelu_tanh)
    be.gelu_tanh_mul(g, u, n);
  else
    be.silu_mul(g, u, n);
}

void add_bias(Backend& be, float* y, const std::vector<float>& b, int64_t rows) {
  if (!b.empty()) be.add_bias(y, b, rows);
}

}  // namespace

void norm_rows(const LayerContext& ctx, const float* in, const std::vector<float>& w, float* out) {
  const ModelConfig& c = ctx.config();
  ctx.backend.rmsnorm(in, w, out, ctx.n_tokens, c.n_embd, c.rms_eps);
}

void add_residual(LayerContext& ctx, const float* y) { ctx.backend.add(ctx.x, y, ctx.n_tokens * ctx.config().n_embd); }

void attention_block(LayerContext& ctx, int l, const float* xn, float* y) {
  const ModelConfig& c = ctx.config();
  const LayerWeights& w = ctx.layer(l);
  const int64_t T = ctx.n_tokens;
  Backend& be = ctx.backend;
  Activations& a = ctx.act;
  // q: [T, n_head, hd]; k, v: [T, n_kv_head, hd]
  const MatmulJob qkv[] = {{&w.wq, a.q}, {&w.wk, a.k}, {&w.wv, a.v}};
  be.matmul_group(qkv, xn, T);
  add_bias(be, a.q, w.bq, T);
  add_bias(be, a.k, w.bk, T);
  add_bias(be, a.v, w.bv, T);
  if (!w.q_norm.empty()) {  // per head: rows of head_dim
    be.rmsnorm(a.q, w.q_norm, a.q, T * c.n_head, c.head_dim, c.rms_eps);
    be.rmsnorm(a.k, w.k_norm, a.k, T * c.n_kv_head, c.head_dim, c.rms_eps);
  }
  const bool half = c.rope_pairing == RopePairing::half;
  be.rope(a.q, T, c.n_head, c.head_dim, ctx.pos0, ctx.inv_freq, half);
  be.rope(a.k, T, c.n_kv_head, c.head_dim, ctx.pos0, ctx.inv_freq, half);

  AttentionVariant variant;
  variant.window = c.layer_window(l);
  variant.softcap = c.attn_softcap;
  variant.scale = c.attn_scale;
  if (c.rope_scaling == RopeScaling::longrope && c.rope_attn_factor != 1.0f) {
    // cos and sin scaled by f scale q·k by f^2.
    const float base = c.attn_scale != 0.0f ? c.attn_scale : 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    variant.scale = base * c.rope_attn_factor * c.rope_attn_factor;
  }
  ctx.attend(l, a.q, a.k, a.v, a.att, variant);  // att: [T, n_head, hd]
  be.matmul(w.wo, a.att, T, y);                  // y: [T, n_embd]
  add_bias(be, y, w.bo, T);
}

void mlp_block(LayerContext& ctx, const LayerWeights& w, const float* xn, float* y) {
  const ModelConfig& c = ctx.config();
  const int64_t T = ctx.n_tokens, F = w.w_gate.rows;
  Backend& be = ctx.backend;
  Activations& a = ctx.act;
  const MatmulJob gate_up[] = {{&w.w_gate, a.gate}, {&w.w_up, a.up}};  // gate, up: [T, F]
  be.matmul_group(gate_up, xn, T);
  gate_act_mul(be, c.activation, a.gate, a.up, T * F);
  be.matmul(w.w_down, a.gate, T, y);  // y: [T, n_embd]
}

void moe_block(LayerContext& ctx, const LayerWeights& w, const float* xn, float* y) {
  const ModelConfig& c = ctx.config();
  const int64_t T = ctx.n_tokens, D = c.n_embd, E = c.n_expert, K = c.n_expert_used, F = c.n_ff_expert;
  Backend& be = ctx.backend;
  Activations& a = ctx.act;
  be.matmul(w.router, xn, T, a.router);  // router: [T, E]
  a.router_host.resize(T * E);
  be.to_host(a.router_host.data(), a.router, T * E * sizeof(float));

  // Per token: softmax over all router logits, keep the top K (ties: lower expert index),
  // renormalize over the chosen ones when asked.
  std::vector<std::vector<int32_t>> rows(E);    // expert -> tokens routed to it
  std::vector<std::vector<double>> weights(E);  // expert -> their routing weights
  std::vector<int> order(E);
  std::vector<double> prob(E);
  for (int64_t t = 0; t < T; ++t) {
    const float* logits = &a.router_host[t * E];
    const float mx = *std::max_element(logits, logits + E);
    double sum = 0;
    for (int64_t e = 0; e < E; ++e) sum += prob[e] = std::exp(static_cast<double>(logits[e]) - mx);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + K, order.end(),
                      [&](int i, int j) { return logits[i] > logits[j] || (logits[i] == logits[j] && i < j); });
    double chosen = 0;
    for (int64_t k = 0; k < K; ++k) chosen += prob[order[k]];
    const double denom = c.expert_weights_norm ? chosen : sum;
    for (int64_t k = 0; k < K; ++k) {
      rows[order[k]].push_back(static_cast<int32_t>(t));
      weights[order[k]].push_back(prob[order[k]] / denom);
    }
  }

  // The weighted sum is kept in double: experts that agree then give exactly their common
  // output (the weights sum to 1 in double, not always in float).
  be.zero(a.moe_sum, static_cast<size_t>(T * D) * sizeof(double));  // moe_sum: [T, D]
  for (int64_t e = 0; e < E; ++e) {
    if (rows[e].empty()) continue;
    const int64_t n = static_cast<int64_t>(rows[e].size());
    be.gather_rows(xn, rows[e], D, a.xe);       // xe: [n, D] the rows routed to expert e
    be.matmul(w.exp_gate[e], a.xe, n, a.gate);  // gate, up: [n, F]
    be.matmul(w.exp_up[e], a.xe, n, a.up);
    be.silu_mul(a.gate, a.up, n * F);
    be.matmul(w.exp_down[e], a.gate, n, a.ye);  // ye: [n, D]
    be.add_rows_weighted(a.moe_sum, a.ye, rows[e], weights[e], D);
  }
  be.narrow(a.moe_sum, y, T * D);
}

void ffn_block(LayerContext& ctx, const LayerWeights& w, const float* xn, float* y) {
  if (!w.exp_gate.empty())
    moe_block(ctx, w, xn, y);
  else
    mlp_block(ctx, w, xn, y);
}

void pre_norm_layer(LayerContext& ctx, int l) {
  const LayerWeights& w = ctx.layer(l);
  float* xn = ctx.act.xn;  // xn, y: [T, D]
  float* y = ctx.act.y;
  norm_rows(ctx, ctx.x, w.attn_norm, xn);
  attention_block(ctx, l, xn, y);
  add_residual(ctx, y);
  norm_rows(ctx, ctx.x, w.ffn_norm, xn);
  ffn_block(ctx, w, xn, y);
  add_residual(ctx, y);
}

}  // namespace rhead

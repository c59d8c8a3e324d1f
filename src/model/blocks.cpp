// Shared blocks of the layer forwards (see blocks.h).
#include "model/blocks.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "ops/ops.h"

namespace rhead {

namespace {

void grow(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// g[i] = gelu_tanh(g[i]) * u[i]; gelu_tanh(x) = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
void gelu_tanh_mul(float* g, const float* u, int64_t n) {
  const float c = 0.7978845608028654f;  // sqrt(2 / pi)
  for (int64_t i = 0; i < n; ++i) {
    const float x = g[i];
    g[i] = 0.5f * x * (1.0f + std::tanh(c * (x + 0.044715f * x * x * x))) * u[i];
  }
}

void gate_act_mul(Activation a, float* g, const float* u, int64_t n) {
  if (a == Activation::gelu_tanh) gelu_tanh_mul(g, u, n);
  else silu_mul(g, u, n);
}

void add_bias(float* y, const std::vector<float>& b, int64_t rows) {
  if (b.empty()) return;
  const int64_t n = static_cast<int64_t>(b.size());
  for (int64_t t = 0; t < rows; ++t) add_inplace(y + t * n, b.data(), n);
}

}  // namespace

void norm_rows(const LayerContext& ctx, const float* in, const std::vector<float>& w, float* out) {
  const ModelConfig& c = ctx.config();
  rmsnorm(in, w.data(), out, ctx.n_tokens, c.n_embd, c.rms_eps);
}

void add_residual(LayerContext& ctx, const float* y) { add_inplace(ctx.x, y, ctx.n_tokens * ctx.config().n_embd); }

void attention_block(LayerContext& ctx, int l, const float* xn, float* y) {
  const ModelConfig& c = ctx.config();
  const LayerWeights& w = ctx.layer(l);
  const int64_t T = ctx.n_tokens;
  Activations& a = ctx.act;
  grow(a.q, T * c.q_dim());   // q: [T, n_head, hd]
  grow(a.k, T * c.kv_dim());  // k, v: [T, n_kv_head, hd]
  grow(a.v, T * c.kv_dim());
  grow(a.att, T * c.q_dim()); // att: [T, n_head, hd]
  matmul(w.wq, xn, T, a.q.data());
  matmul(w.wk, xn, T, a.k.data());
  matmul(w.wv, xn, T, a.v.data());
  add_bias(a.q.data(), w.bq, T);
  add_bias(a.k.data(), w.bk, T);
  add_bias(a.v.data(), w.bv, T);
  if (!w.q_norm.empty()) {  // per head: rows of head_dim
    rmsnorm(a.q.data(), w.q_norm.data(), a.q.data(), T * c.n_head, c.head_dim, c.rms_eps);
    rmsnorm(a.k.data(), w.k_norm.data(), a.k.data(), T * c.n_kv_head, c.head_dim, c.rms_eps);
  }
  const bool half = c.rope_pairing == RopePairing::half;
  rope(a.q.data(), T, c.n_head, c.head_dim, ctx.pos0, ctx.inv_freq, half);
  rope(a.k.data(), T, c.n_kv_head, c.head_dim, ctx.pos0, ctx.inv_freq, half);

  AttentionVariant variant;
  variant.window = c.layer_window(l);
  variant.softcap = c.attn_softcap;
  variant.scale = c.attn_scale;
  if (c.rope_scaling == RopeScaling::longrope && c.rope_attn_factor != 1.0f) {
    // cos and sin scaled by f scale q·k by f^2.
    const float base = c.attn_scale != 0.0f ? c.attn_scale : 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    variant.scale = base * c.rope_attn_factor * c.rope_attn_factor;
  }
  ctx.attend(l, a.q.data(), a.k.data(), a.v.data(), a.att.data(), variant);
  matmul(w.wo, a.att.data(), T, y);
  add_bias(y, w.bo, T);
}

void mlp_block(LayerContext& ctx, const LayerWeights& w, const float* xn, float* y) {
  const ModelConfig& c = ctx.config();
  const int64_t T = ctx.n_tokens, F = w.w_gate.rows;
  Activations& a = ctx.act;
  grow(a.gate, T * F);  // gate, up: [T, F]
  grow(a.up, T * F);
  matmul(w.w_gate, xn, T, a.gate.data());
  matmul(w.w_up, xn, T, a.up.data());
  gate_act_mul(c.activation, a.gate.data(), a.up.data(), T * F);
  matmul(w.w_down, a.gate.data(), T, y);
}

void moe_block(LayerContext& ctx, const LayerWeights& w, const float* xn, float* y) {
  const ModelConfig& c = ctx.config();
  const int64_t T = ctx.n_tokens, D = c.n_embd, E = c.n_expert, K = c.n_expert_used, F = c.n_ff_expert;
  Activations& a = ctx.act;
  grow(a.router, T * E);  // router: [T, E]
  matmul(w.router, xn, T, a.router.data());

  // Per token: softmax over all router logits, keep the top K (ties: lower expert index),
  // renormalize over the chosen ones when asked.
  std::vector<std::vector<std::pair<int64_t, double>>> routed(E);  // expert -> (token, weight)
  std::vector<int> order(E);
  std::vector<double> prob(E);
  for (int64_t t = 0; t < T; ++t) {
    const float* logits = &a.router[t * E];
    const float mx = *std::max_element(logits, logits + E);
    double sum = 0;
    for (int64_t e = 0; e < E; ++e) sum += prob[e] = std::exp(static_cast<double>(logits[e]) - mx);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + K, order.end(),
                      [&](int i, int j) { return logits[i] > logits[j] || (logits[i] == logits[j] && i < j); });
    double chosen = 0;
    for (int64_t k = 0; k < K; ++k) chosen += prob[order[k]];
    const double denom = c.expert_weights_norm ? chosen : sum;
    for (int64_t k = 0; k < K; ++k) routed[order[k]].push_back({t, prob[order[k]] / denom});
  }

  // The weighted sum is kept in double: experts that agree then give exactly their common
  // output (the weights sum to 1 in double, not always in float).
  a.moe_sum.assign(T * D, 0.0);
  for (int64_t e = 0; e < E; ++e) {
    const auto& tokens = routed[e];
    if (tokens.empty()) continue;
    const int64_t n = static_cast<int64_t>(tokens.size());
    grow(a.xe, n * D);  // xe: [n, D] the rows routed to expert e
    grow(a.ye, n * D);  // ye: [n, D]
    grow(a.gate, n * F);  // gate, up: [n, F]
    grow(a.up, n * F);
    for (int64_t i = 0; i < n; ++i) std::copy(xn + tokens[i].first * D, xn + (tokens[i].first + 1) * D, &a.xe[i * D]);
    matmul(w.exp_gate[e], a.xe.data(), n, a.gate.data());
    matmul(w.exp_up[e], a.xe.data(), n, a.up.data());
    silu_mul(a.gate.data(), a.up.data(), n * F);
    matmul(w.exp_down[e], a.gate.data(), n, a.ye.data());
    for (int64_t i = 0; i < n; ++i) {
      double* dst = &a.moe_sum[tokens[i].first * D];
      const float* src = &a.ye[i * D];
      const double wt = tokens[i].second;
      for (int64_t d = 0; d < D; ++d) dst[d] += wt * src[d];
    }
  }
  for (int64_t i = 0; i < T * D; ++i) y[i] = static_cast<float>(a.moe_sum[i]);
}

void ffn_block(LayerContext& ctx, const LayerWeights& w, const float* xn, float* y) {
  if (!w.exp_gate.empty()) moe_block(ctx, w, xn, y);
  else mlp_block(ctx, w, xn, y);
}

void pre_norm_layer(LayerContext& ctx, int l) {
  const LayerWeights& w = ctx.layer(l);
  const int64_t TD = ctx.n_tokens * ctx.config().n_embd;
  grow(ctx.act.xn, TD);  // xn, y: [T, D]
  grow(ctx.act.y, TD);
  float* xn = ctx.act.xn.data();
  float* y = ctx.act.y.data();
  norm_rows(ctx, ctx.x, w.attn_norm, xn);
  attention_block(ctx, l, xn, y);
  add_residual(ctx, y);
  norm_rows(ctx, ctx.x, w.ffn_norm, xn);
  ffn_block(ctx, w, xn, y);
  add_residual(ctx, y);
}

}  // namespace rhead

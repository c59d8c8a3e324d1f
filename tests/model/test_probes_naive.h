// A naive full-matrix forward pass for the probe and mask tests: every layer, every query
// head, the whole [n_tokens, n_tokens] causal attention matrix, in double precision from
// the model's weights (dequantized row by row). It shares no code with Session beyond the
// RoPE frequency table and the f16 conversion used to mimic the KV cache. Under a KV policy a
// restricted head's row gives weight exactly 0 to the keys it does not see.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "model/kv_policy.h"
#include "model/model.h"
#include "model/session.h"
#include "ops/quant.h"

namespace rhead::testing {

struct NaiveRun {
  int n_layer = 0, n_head = 0, head_dim = 0;
  int64_t n_tokens = 0;
  // weights[(l * n_head + h) * n_tokens + t] = attention row of query t over keys 0..t.
  std::vector<std::vector<double>> weights;
  // head_out[((l * n_tokens + t) * n_head + h) * head_dim + i]: a head's output (before W_o).
  std::vector<double> head_out;
  // logits[t]: [n_vocab] output of token t (final norm and output head).
  std::vector<std::vector<double>> logits;
  const std::vector<double>& row(int l, int h, int64_t t) const {
    return weights[(static_cast<size_t>(l) * n_head + h) * n_tokens + t];
  }
  double out(int l, int64_t t, int h, int i) const {
    return head_out[((static_cast<size_t>(l) * n_tokens + t) * n_head + h) * head_dim + i];
  }
};

// y = W x for all rows of W, in double.
inline std::vector<double> naive_linear(const Weight& w, const std::vector<double>& x) {
  std::vector<float> row(static_cast<size_t>(w.cols));
  std::vector<double> y(static_cast<size_t>(w.rows));
  for (int64_t r = 0; r < w.rows; ++r) {
    dequantize_row(w.type, w.row(r), row.data(), w.cols);
    double s = 0;
    for (int64_t c = 0; c < w.cols; ++c) s += static_cast<double>(row[c]) * x[c];
    y[r] = s;
  }
  return y;
}

inline std::vector<double> naive_rmsnorm(const std::vector<double>& x, const std::vector<float>& w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double inv = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + eps);
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * w[i];
  return y;
}

// Runs `tokens` from position 0. kv_f16: K and V are rounded to f16 as the default KV cache
// stores them (queries stay unrounded, as in Session).
// kv_from: take K and V from that session's cache instead (it must hold at least these
// tokens, in its own element type). Queries are still computed here; this isolates the
// attention and its probes from the f16 rounding flips that tiny differences upstream cause
// (one f16 ulp of a large key moves a logit by ~1e-2). The recomputed K and V must still
// agree with the cache: max_kv_diff reports the largest difference, relative to
// max(1, |cached value|).
// kv_policy: the visibility of a KV-cache policy (nullptr or inactive: plain causal).
inline NaiveRun naive_forward(const Model& m, const std::vector<int32_t>& tokens, bool kv_f16,
                              const Session* kv_from = nullptr, double* max_kv_diff = nullptr,
                              const KvPolicy* kv_policy = nullptr) {
  const ModelConfig& c = m.config;
  const int64_t T = static_cast<int64_t>(tokens.size());
  const int D = c.n_embd, hd = c.head_dim, H = c.n_head, G = c.n_kv_head, half = hd / 2;
  const std::vector<float> inv_freq = rope_inv_freq(c, m.rope_freq_factors);
  NaiveRun run;
  run.n_layer = c.n_layer;
  run.n_head = H;
  run.head_dim = hd;
  run.n_tokens = T;
  run.weights.resize(static_cast<size_t>(c.n_layer) * H * T);
  run.head_out.assign(static_cast<size_t>(c.n_layer) * T * H * hd, 0.0);

  std::vector<std::vector<double>> x(T, std::vector<double>(D));
  std::vector<float> erow(D);
  for (int64_t t = 0; t < T; ++t) {
    dequantize_row(m.tok_embd.type, m.tok_embd.row(tokens[t]), erow.data(), D);
    for (int i = 0; i < D; ++i) x[t][i] = erow[i];
  }
  auto rotate = [&](std::vector<double>& v, int n_heads, int64_t pos) {
    for (int h = 0; h < n_heads; ++h)
      for (int i = 0; i < half; ++i) {
        const double angle = static_cast<double>(pos) * inv_freq[i];
        const int a = h * hd + (c.rope_pairing == RopePairing::half ? i : 2 * i);
        const int b = h * hd + (c.rope_pairing == RopePairing::half ? i + half : 2 * i + 1);
        const double x0 = v[a], x1 = v[b];
        v[a] = x0 * std::cos(angle) - x1 * std::sin(angle);
        v[b] = x0 * std::sin(angle) + x1 * std::cos(angle);
      }
  };
  auto kv_round = [&](double v) {
    return kv_f16 ? static_cast<double>(f16_to_f32(f32_to_f16(static_cast<float>(v))))
                  : static_cast<double>(static_cast<float>(v));
  };

  for (int l = 0; l < c.n_layer; ++l) {
    const LayerWeights& w = m.layers[l];
    std::vector<std::vector<double>> q(T), k(T), v(T);
    for (int64_t t = 0; t < T; ++t) {
      const std::vector<double> xn = naive_rmsnorm(x[t], w.attn_norm, c.rms_eps);
      q[t] = naive_linear(w.wq, xn);
      k[t] = naive_linear(w.wk, xn);
      v[t] = naive_linear(w.wv, xn);
      if (!w.bq.empty()) {
        for (size_t i = 0; i < q[t].size(); ++i) q[t][i] += w.bq[i];
        for (size_t i = 0; i < k[t].size(); ++i) k[t][i] += w.bk[i], v[t][i] += w.bv[i];
      }
      rotate(q[t], H, t);
      rotate(k[t], G, t);
      for (auto& e : k[t]) e = kv_round(e);
      for (auto& e : v[t]) e = kv_round(e);
      if (kv_from) {
        const KvType type = kv_from->kv_cache().type;
        const bool f16 = type == KvType::f16;
        // q8_0: a row is ceil(hd / 32) blocks of 34 bytes (the last zero-padded), dequantized
        // here by the scalar reference.
        const int64_t q8_padded = (hd + 31) / 32 * 32, q8_row = q8_padded / 32 * 34;
        std::vector<float> q8_values(q8_padded);
        for (int which = 0; which < 2; ++which) {
          const void* base = which == 0 ? kv_from->k_cache(l) : kv_from->v_cache(l);
          std::vector<double>& dst = which == 0 ? k[t] : v[t];
          for (int g = 0; g < G; ++g)
            for (int i = 0; i < hd; ++i) {
              const size_t row = static_cast<size_t>(g) * kv_from->capacity() + t, at = row * hd + i;
              if (type == KvType::q8_0 && i == 0)
                dequantize_row_ref(DType::Q8_0, static_cast<const uint8_t*>(base) + row * q8_row, q8_values.data(),
                                   q8_padded);
              const double cached = type == KvType::q8_0 ? q8_values[i]
                                    : f16                ? f16_to_f32(static_cast<const uint16_t*>(base)[at])
                                                         : static_cast<const float*>(base)[at];
              const double rel = std::abs(cached - dst[g * hd + i]) / std::max(1.0, std::abs(cached));
              if (max_kv_diff) *max_kv_diff = std::max(*max_kv_diff, rel);
              dst[g * hd + i] = cached;
            }
        }
      }
    }
    const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
    std::vector<std::vector<double>> att(T, std::vector<double>(static_cast<size_t>(H) * hd, 0.0));
    for (int h = 0; h < H; ++h) {
      const int g = h / (H / G);
      for (int64_t t = 0; t < T; ++t) {
        // The full causal row: scores, softmax, mix. Keys a restricted head does not see get
        // weight 0.
        const bool restricted = kv_policy && kv_policy->active() && !kv_policy->is_full(l, h);
        auto visible = [&](int64_t j) { return !restricted || kv_visible(t, j, kv_policy->window, kv_policy->sink); };
        std::vector<double> s(t + 1);
        double mx = -1e300;
        for (int64_t j = 0; j <= t; ++j) {
          if (!visible(j)) continue;
          double d = 0;
          for (int i = 0; i < hd; ++i) d += q[t][h * hd + i] * k[j][g * hd + i];
          s[j] = d * scale;
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j <= t; ++j) sum += (s[j] = visible(j) ? std::exp(s[j] - mx) : 0.0);
        for (auto& e : s) e /= sum;
        for (int64_t j = 0; j <= t; ++j)
          for (int i = 0; i < hd; ++i) att[t][h * hd + i] += s[j] * v[j][g * hd + i];
        for (int i = 0; i < hd; ++i)
          run.head_out[((static_cast<size_t>(l) * T + t) * H + h) * hd + i] = att[t][h * hd + i];
        run.weights[(static_cast<size_t>(l) * H + h) * T + t] = std::move(s);
      }
    }
    for (int64_t t = 0; t < T; ++t) {
      const std::vector<double> o = naive_linear(w.wo, att[t]);
      for (int i = 0; i < D; ++i) x[t][i] += o[i];
      const std::vector<double> xn = naive_rmsnorm(x[t], w.ffn_norm, c.rms_eps);
      std::vector<double> g = naive_linear(w.w_gate, xn);
      const std::vector<double> u = naive_linear(w.w_up, xn);
      for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
      const std::vector<double> d = naive_linear(w.w_down, g);
      for (int i = 0; i < D; ++i) x[t][i] += d[i];
    }
  }
  for (int64_t t = 0; t < T; ++t)
    run.logits.push_back(naive_linear(m.output, naive_rmsnorm(x[t], m.output_norm, c.rms_eps)));
  return run;
}

}  // namespace rhead::testing

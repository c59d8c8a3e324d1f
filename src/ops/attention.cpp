// Attention kernel (fast and scalar reference) with probes and interventions.
#include "ops/attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "ops/quant.h"

namespace rhead {
namespace {

// ---- Row kernels over all keys of one (token, head): one dispatch per row, not per key ----

// row[j] = scale * (q · k_j) for j in [0, n); k rows are hd f16 values each.
__attribute__((target("avx2,fma,f16c"))) void scores_f16_avx2(const float* q, const uint16_t* k, int64_t n, int hd,
                                                               float scale, float* row) {
  const int full = hd / 8 * 8;
  for (int64_t j = 0; j < n; ++j) {
    const uint16_t* kj = k + j * hd;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < full; i += 8)
      acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i),
                            _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kj + i))), acc);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_hadd_ps(s, s);
    s = _mm_hadd_ps(s, s);
    float r = _mm_cvtss_f32(s);
    for (int i = full; i < hd; ++i) r += q[i] * f16_to_f32(kj[i]);
    row[j] = r * scale;
  }
}

// out += sum_j w[j] * v_j over j in [0, n) with w[j] != 0 (a weight that underflowed to
// exactly 0 adds nothing, so skipping it is exact).
__attribute__((target("avx2,fma,f16c"))) void mix_f16_avx2(const float* w, const uint16_t* v, int64_t n, int hd,
                                                            float* out) {
  const int full = hd / 8 * 8;
  for (int64_t j = 0; j < n; ++j) {
    if (w[j] == 0.0f) continue;
    const uint16_t* vj = v + j * hd;
    const __m256 a = _mm256_set1_ps(w[j]);
    for (int i = 0; i < full; i += 8) {
      __m256 x = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(vj + i)));
      _mm256_storeu_ps(out + i, _mm256_fmadd_ps(a, x, _mm256_loadu_ps(out + i)));
    }
    for (int i = full; i < hd; ++i) out[i] += w[j] * f16_to_f32(vj[i]);
  }
}

const bool kHaveAvx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                       __builtin_cpu_supports("f16c");

// Scalar versions for f32 caches and for the reference path.
void scores_scalar(const float* q, const void* k, bool f16, int64_t n, int hd, float scale, float* row) {
  for (int64_t j = 0; j < n; ++j) {
    float r = 0.0f;
    if (f16) {
      const uint16_t* kj = static_cast<const uint16_t*>(k) + j * hd;
      for (int i = 0; i < hd; ++i) r += q[i] * f16_to_f32(kj[i]);
    } else {
      const float* kj = static_cast<const float*>(k) + j * hd;
      for (int i = 0; i < hd; ++i) r += q[i] * kj[i];
    }
    row[j] = r * scale;
  }
}

void mix_scalar(const float* w, const void* v, bool f16, int64_t n, int hd, float* out) {
  for (int64_t j = 0; j < n; ++j) {
    if (w[j] == 0.0f) continue;
    if (f16) {
      const uint16_t* vj = static_cast<const uint16_t*>(v) + j * hd;
      for (int i = 0; i < hd; ++i) out[i] += w[j] * f16_to_f32(vj[i]);
    } else {
      const float* vj = static_cast<const float*>(v) + j * hd;
      for (int i = 0; i < hd; ++i) out[i] += w[j] * vj[i];
    }
  }
}

// The keys one query sees (file comment of attention.h): at most two runs of positions in
// ascending order, the sink run of a windowed head and the recent run ending at the query.
struct VisibleKeys {
  int64_t begin[2] = {0, 0}, end[2] = {0, 0};
  int n = 0;
};

VisibleKeys visible_keys(const AttentionArgs& a, int64_t i, int h) {
  VisibleKeys v;
  const int64_t lo = a.window > 0 ? std::max<int64_t>(0, i - a.window + 1) : 0;
  const int64_t hw = a.head_window ? a.head_window[h] : 0;
  int64_t recent = hw > 0 ? std::max(lo, i - hw + 1) : lo;
  if (hw > 0 && a.head_sink > lo) {
    if (a.head_sink >= recent) {
      recent = lo;  // the sink run reaches the recent run: one run
    } else {
      v.begin[0] = lo;
      v.end[0] = a.head_sink;
      v.n = 1;
    }
  }
  v.begin[v.n] = recent;
  v.end[v.n] = i + 1;
  ++v.n;
  return v;
}

float score_scale(const AttentionArgs& a) {
  return a.scale != 0.0f ? a.scale : 1.0f / std::sqrt(static_cast<float>(a.head_dim));
}

// One (token, head) pair. `row` is the thread's working row of at least pos0 + t + 1 floats,
// indexed by absolute key position; only the visible positions are written or read.
void attend_one(const AttentionArgs& a, int64_t t, int h, float* row, bool fast) {
  const int hd = a.head_dim;
  const int64_t pos = a.pos0 + t;
  const VisibleKeys vis = visible_keys(a, pos, h);
  const int kvh = h / (a.n_head / a.n_kv_head);
  const size_t elem = a.kv_f16 ? 2 : 4;
  const uint8_t* kbase = static_cast<const uint8_t*>(a.k) + kvh * a.kv_head_stride * elem;
  const uint8_t* vbase = static_cast<const uint8_t*>(a.v) + kvh * a.kv_head_stride * elem;
  const float* q = a.q + (t * a.n_head + h) * hd;
  float* out = a.out + (t * a.n_head + h) * hd;
  const HeadOverride ov = a.overrides ? a.overrides[h] : HeadOverride::none;
  const int32_t slot = a.obs_slot ? a.obs_slot[t] : -1;
  const bool simd = fast && a.kv_f16 && kHaveAvx2;

  std::fill(out, out + hd, 0.0f);
  float inv_sum = 0.0f;
  for (int r = 0; r < vis.n; ++r) {
    const int64_t b = vis.begin[r], n = vis.end[r] - b;
    if (ov == HeadOverride::uniform) {
      // A zeroed query scores every visible key 0: uniform weights over them.
      std::fill(row + b, row + b + n, 0.0f);
    } else {
      const float scale = score_scale(a);
      if (simd)
        scores_f16_avx2(q, reinterpret_cast<const uint16_t*>(kbase) + b * hd, n, hd, scale, row + b);
      else
        scores_scalar(q, kbase + b * hd * elem, a.kv_f16, n, hd, scale, row + b);
      if (a.softcap != 0.0f)
        for (int64_t j = b; j < b + n; ++j) row[j] = a.softcap * std::tanh(row[j] / a.softcap);
    }
  }
  // Softmax over the visible keys; the argmax is the first strict maximum (earliest on ties).
  float max_logit = -std::numeric_limits<float>::infinity();
  int64_t argmax = vis.begin[0];
  for (int r = 0; r < vis.n; ++r)
    for (int64_t j = vis.begin[r]; j < vis.end[r]; ++j)
      if (row[j] > max_logit) {
        max_logit = row[j];
        argmax = j;
      }
  float sum = 0.0f;
  for (int r = 0; r < vis.n; ++r)
    for (int64_t j = vis.begin[r]; j < vis.end[r]; ++j) {
      row[j] = std::exp(row[j] - max_logit);
      sum += row[j];
    }
  inv_sum = 1.0f / sum;
  if (ov == HeadOverride::none || ov == HeadOverride::uniform) {
    // Normalize first so the mix sums p_j * v_j exactly as the weights are reported.
    for (int r = 0; r < vis.n; ++r) {
      const int64_t b = vis.begin[r], n = vis.end[r] - b;
      for (int64_t j = b; j < b + n; ++j) row[j] *= inv_sum;
      if (simd)
        mix_f16_avx2(row + b, reinterpret_cast<const uint16_t*>(vbase) + b * hd, n, hd, out);
      else
        mix_scalar(row + b, vbase + b * hd * elem, a.kv_f16, n, hd, out);
    }
    inv_sum = 1.0f;  // row now holds the normalized weights
  } else if (ov == HeadOverride::mean) {
    std::copy(a.head_means + h * hd, a.head_means + (h + 1) * hd, out);
  }  // zero: out stays 0

  if (slot >= 0) {
    const AttentionProbeOut& p = a.probes;
    const int64_t idx = slot * p.obs_stride + h;
    if (p.argmax) p.argmax[idx] = static_cast<int32_t>(argmax);
    if (p.argmax_weight) p.argmax_weight[idx] = row[argmax] * inv_sum;
    if (p.sink_mass) p.sink_mass[idx] = vis.begin[0] == 0 ? row[0] * inv_sum : 0.0f;
    if (p.span_mass) {
      float m = 0.0f;
      for (int r = 0; r < vis.n; ++r)
        for (int64_t j = std::max(vis.begin[r], p.span_begin); j < std::min(vis.end[r], p.span_end); ++j) m += row[j];
      p.span_mass[idx] = m * inv_sum;
    }
    if (p.top_k > 0 && p.topk) {
      // Selection by repeated scan keeps the contract simple: larger weight first, earlier
      // position first among equals; slots past the number of visible keys report -1.
      std::vector<char> taken(static_cast<size_t>(pos + 1), 0);
      for (int i = 0; i < p.top_k; ++i) {
        int64_t best = -1;
        for (int r = 0; r < vis.n; ++r)
          for (int64_t j = vis.begin[r]; j < vis.end[r]; ++j)
            if (!taken[j] && (best < 0 || row[j] > row[best])) best = j;
        p.topk[idx * p.top_k + i] = static_cast<int32_t>(best);
        p.topk_weight[idx * p.top_k + i] = best >= 0 ? row[best] * inv_sum : 0.0f;
        if (best >= 0) taken[best] = 1;
      }
    }
  }
}

void run(const AttentionArgs& a, bool fast) {
  const int64_t pairs = a.n_tokens * a.n_head;
  const int64_t max_keys = a.pos0 + a.n_tokens;
#pragma omp parallel if (pairs > 1 && max_keys * a.head_dim * pairs > (1 << 17))
  {
    std::vector<float> row(static_cast<size_t>(max_keys));
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < pairs; ++i) attend_one(a, i / a.n_head, static_cast<int>(i % a.n_head), row.data(), fast);
  }
  if (a.head_out_sum) {
    for (int64_t t = 0; t < a.n_tokens; ++t)
      for (int64_t i = 0; i < static_cast<int64_t>(a.n_head) * a.head_dim; ++i)
        a.head_out_sum[i] += a.out[t * a.n_head * a.head_dim + i];
  }
}

}  // namespace

void attention(const AttentionArgs& a) { run(a, true); }
void attention_ref(const AttentionArgs& a) { run(a, false); }

}  // namespace rhead

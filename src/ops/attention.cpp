// Attention kernel (fast and scalar reference) with probes and interventions.
#include "ops/attention.h"

#include <cblas.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "io/error.h"
#include "ops/kv_cache.h"
#include "ops/lanes.h"
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

const bool kHaveAvx2 = cpu_has_isa(KernelISA::AVX2);

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

KvType kv_type_of(const AttentionArgs& a) { return a.kv_q8_0 ? KvType::q8_0 : a.kv_f16 ? KvType::f16 : KvType::f32; }

// The first row of KV head g's K (or V, value) cache (kv_head_stride counts values).
const uint8_t* kv_head_rows(const AttentionArgs& a, int64_t g, bool value) {
  if (a.kv_heads) return static_cast<const uint8_t*>(value ? a.kv_heads[g].v : a.kv_heads[g].k);
  return static_cast<const uint8_t*>(value ? a.v : a.k) +
         g * (a.kv_head_stride / a.head_dim) * kv_row_bytes(kv_type_of(a), a.head_dim);
}

// The row map of KV head g when it is a ring (compacted, windowed); nullptr: row = position.
const KvRowMap* kv_ring(const AttentionArgs& a, int64_t g) {
  return a.kv_heads && a.kv_heads[g].map.ring > 0 ? &a.kv_heads[g].map : nullptr;
}

// The rows of positions [b, b + n) of one KV head's K or V cache (base: its first row), as n
// consecutive rows: in place unless a ring wraps inside the range, then copied into `gather`
// (a byte copy: the values, and so every result, are those of the contiguous layout).
const uint8_t* kv_rows_at(const uint8_t* base, const KvRowMap* ring, int64_t b, int64_t n, int64_t row_bytes,
                          std::vector<uint8_t>& gather) {
  if (!ring) return base + b * row_bytes;
  if (ring->run(b) >= n) return base + ring->row(b) * row_bytes;
  gather.resize(static_cast<size_t>(n * row_bytes));
  for (int64_t j = b; j < b + n;) {
    const int64_t m = std::min(ring->run(j), b + n - j);
    std::memcpy(gather.data() + (j - b) * row_bytes, base + ring->row(j) * row_bytes,
                static_cast<size_t>(m * row_bytes));
    j += m;
  }
  return gather.data();
}

// dst[rows, hd] = the f32 values of `rows` Q8_0 rows of one KV head, from row `first` on.
void q8_0_rows_to_f32(const uint8_t* head, int64_t first, int64_t rows, int hd, float* dst) {
  kv_dequantize_rows_q8_0(head + first * kv_row_bytes(KvType::q8_0, hd), rows, hd, dst);
}

// The keys one query sees (file comment of attention.h): at most two runs of positions in
// ascending order, the sink run of a windowed head and the recent run ending at the query.
using VisibleKeys = KvRuns;

VisibleKeys visible_keys(const AttentionArgs& a, int64_t i, int h) {
  return kv_runs(i, a.window, a.head_window ? a.head_window[h] : 0, a.head_sink);
}

// The largest score over the visible keys and the first key that reaches it (the earliest
// on ties): the one max/argmax scan of a softmax row.
struct RowMax {
  float value;
  int64_t argmax;
};
RowMax visible_max(const float* row, const VisibleKeys& vis) {
  RowMax m{-std::numeric_limits<float>::infinity(), vis.begin[0]};
  for (int r = 0; r < vis.n; ++r)
    for (int64_t j = vis.begin[r]; j < vis.end[r]; ++j)
      if (row[j] > m.value) {
        m.value = row[j];
        m.argmax = j;
      }
  return m;
}

float score_scale(const AttentionArgs& a) {
  return a.scale != 0.0f ? a.scale : 1.0f / std::sqrt(static_cast<float>(a.head_dim));
}

// Probes of one observed (token, head) at index idx of the probe arrays. row[j] * inv_sum is
// the attention weight of visible key j; argmax is the first strict maximum of the scores;
// n_keys bounds the positions (query position + 1).
void write_probes(const AttentionProbeOut& p, int64_t idx, const float* row, const VisibleKeys& vis, int64_t argmax,
                  float inv_sum, int64_t n_keys) {
  if (p.argmax) p.argmax[idx] = static_cast<int32_t>(argmax);
  if (p.argmax_weight) p.argmax_weight[idx] = row[argmax] * inv_sum;
  if (p.sink_mass) p.sink_mass[idx] = vis.begin[0] == 0 ? row[0] * inv_sum : 0.0f;
  if (p.span_mass) {
    float m = 0.0f;
    for (int r = 0; r < vis.n; ++r)
      for (int64_t j = std::max(vis.begin[r], p.span_begin); j < std::min(vis.end[r], p.span_end); ++j) m += row[j];
    p.span_mass[idx] = m * inv_sum;
  }
  if (p.key_weights) {
    const int64_t o = idx / p.obs_stride, h = idx % p.obs_stride;
    float* w = p.key_weights + (o * p.key_weights_stride + h) * p.key_weights_len;
    std::fill(w, w + p.key_weights_len, 0.0f);
    for (int r = 0; r < vis.n; ++r)
      for (int64_t j = vis.begin[r]; j < std::min(vis.end[r], p.key_weights_len); ++j) w[j] = row[j] * inv_sum;
  }
  if (p.top_k > 0 && p.topk) {
    // Selection by repeated scan keeps the contract simple: larger weight first, earlier
    // position first among equals; slots past the number of visible keys report -1.
    std::vector<char> taken(static_cast<size_t>(n_keys), 0);
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

// One (token, head) pair. `row` is the thread's working row of at least pos0 + t + 1 floats,
// indexed by absolute key position; only the visible positions are written or read.
void attend_one(const AttentionArgs& a, int64_t t, int h, float* row, bool fast) {
  const int hd = a.head_dim;
  const int64_t pos = a.pos0 + t;
  const VisibleKeys vis = visible_keys(a, pos, h);
  const int kvh = h / (a.n_head / a.n_kv_head);
  // q8_0 rows are dequantized per visible run and read as f32 by the scalar loops.
  const bool q8 = a.kv_q8_0, f16 = a.kv_f16 && !q8;
  const uint8_t* kbase = kv_head_rows(a, kvh, false);
  const uint8_t* vbase = kv_head_rows(a, kvh, true);
  const KvRowMap* ring = kv_ring(a, kvh);
  const int64_t row_bytes = kv_row_bytes(kv_type_of(a), hd);
  std::vector<float> deq;
  std::vector<uint8_t> gather;
  const auto rows = [&](const uint8_t* base, int64_t b, int64_t n) -> const uint8_t* {
    const uint8_t* at = kv_rows_at(base, ring, b, n, row_bytes, gather);
    if (!q8) return at;
    deq.resize(static_cast<size_t>(n) * hd);
    q8_0_rows_to_f32(at, 0, n, hd, deq.data());
    return reinterpret_cast<const uint8_t*>(deq.data());
  };
  const float* q = a.q + (t * a.n_head + h) * hd;
  float* out = a.out + (t * a.n_head + h) * hd;
  const HeadOverride ov = a.overrides ? a.overrides[h] : HeadOverride::none;
  const int32_t slot = a.obs_slot ? a.obs_slot[t] : -1;
  const bool simd = fast && f16 && kHaveAvx2;

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
        scores_f16_avx2(q, reinterpret_cast<const uint16_t*>(rows(kbase, b, n)), n, hd, scale, row + b);
      else
        scores_scalar(q, rows(kbase, b, n), f16, n, hd, scale, row + b);
      if (a.softcap != 0.0f)
        for (int64_t j = b; j < b + n; ++j) row[j] = a.softcap * std::tanh(row[j] / a.softcap);
    }
  }
  // Softmax over the visible keys.
  const auto [max_logit, argmax] = visible_max(row, vis);
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
        mix_f16_avx2(row + b, reinterpret_cast<const uint16_t*>(rows(vbase, b, n)), n, hd, out);
      else
        mix_scalar(row + b, rows(vbase, b, n), f16, n, hd, out);
    }
    inv_sum = 1.0f;  // row now holds the normalized weights
  } else if (ov == HeadOverride::mean) {
    std::copy(a.head_means + h * hd, a.head_means + (h + 1) * hd, out);
  }  // zero: out stays 0

  if (slot >= 0) write_probes(a.probes, slot * a.probes.obs_stride + h, row, vis, argmax, inv_sum, pos + 1);
}

// ---- Tiled kernel (flash attention) ----
//
// Work item = (KV head g, block of query tokens, slice of keys). Its rows are the (token,
// head) pairs of the block whose heads belong to group g, so every K/V tile is converted
// from f16 once and used by all the group's query heads. Per key tile of the item:
//   S[M, nk] = (scale * Q[M, hd]) . K[nk, hd]^T           (sgemm)
//   soft-cap, mask the keys a row does not see, online softmax: running max m and sum l per
//   row, P = exp(S - m), O[M, hd] = O * exp(m_old - m) + P . V[nk, hd]   (sgemm)
// With several key slices (decode: more threads than work items), each slice keeps its
// (m, l, O) and the slices are merged at the end. Rows with probes also write their scores
// into a full-length row, from which the probes are read exactly as in the row kernel.

constexpr int64_t kTileRows = 256;      // query rows (tokens x group heads) per work item
constexpr int64_t kPrefillKeys = 256;   // keys per tile when there are many query rows
constexpr int64_t kLaneKeys = 32;       // keys per tile of the lane kernel (K and V tiles in f32 fit L1)
constexpr int64_t kPrefetchTiles = 32;  // lane kernel: prefetch K/V this many tiles ahead (into L2)
constexpr int64_t kMaxLaneRows = 32;    // up to this many query rows per item: lane kernel
constexpr int64_t kMinSliceKeys = 512;  // a key slice is never shorter than this
constexpr int64_t kSliceWorkers = 32;   // key slices aim at this many work items (not the thread count)

void single_threaded_blas_here() {
  static const bool done = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)done;
}

// ---- AVX-512 helpers: loads from the cache ----
// GCC 12 warns inside its own AVX-512 intrinsics (their "undefined" pass-through operands).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#define RHEAD_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,f16c")))
#define RHEAD_INLINE __attribute__((always_inline)) inline

const bool kHaveAvx512 = cpu_has_isa(KernelISA::AVX512);

// Values d0 .. d0 + 15 of one cache row (d0 a multiple of 16) as f32: f16 converted, f32 as
// stored, q8_0 as the f16 scale of d0's block times each int8 value, the product of the scalar
// dequantization (dequant_block_q8_0), so the very f32 values an f32 copy of the row holds.
template <KvType T>
RHEAD_AVX512 RHEAD_INLINE __m512 load16(const uint8_t* row, int d0) {
  if constexpr (T == KvType::f16) {
    return lanes16::load_f16(row, d0);
  } else if constexpr (T == KvType::f32) {
    return lanes16::load_f32(row, d0);
  } else {
    const uint8_t* block = row + d0 / 32 * 34;  // 2 bytes of f16 scale, then 32 int8
    uint16_t d;
    std::memcpy(&d, block, 2);
    const __m512 q = _mm512_cvtepi32_ps(
        _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2 + d0 % 32))));
    return _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(d)), q);
  }
}

#pragma GCC diagnostic pop

float exp_shift_sum(float* p, int64_t n, float m) {
  if (kHaveAvx512) return lanes16::exp_shift_sum(p, n, m);
  if (kHaveAvx2) return lanes8::exp_shift_sum(p, n, m);
  float sum = 0.0f;
  for (int64_t j = 0; j < n; ++j) sum += (p[j] = std::exp(p[j] - m));
  return sum;
}

// The largest of p[0 .. n) (-inf for n = 0).
float max_of(const float* p, int64_t n) {
  if (kHaveAvx512) return lanes16::max_of(p, n);
  if (kHaveAvx2) return lanes8::max_of(p, n);
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < n; ++j) mx = std::max(mx, p[j]);
  return mx;
}

// dst[n, hd] = f32 copy of n f16 rows.
__attribute__((target("avx2,fma,f16c"))) void f16_rows_to_f32_avx2(const uint16_t* src, int64_t count, float* dst) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  for (; i < count; ++i) dst[i] = f16_to_f32(src[i]);
}

void f16_rows_to_f32(const uint16_t* src, int64_t count, float* dst) {
  if (kHaveAvx2) {
    f16_rows_to_f32_avx2(src, count, dst);
    return;
  }
  for (int64_t i = 0; i < count; ++i) dst[i] = f16_to_f32(src[i]);
}

// Prefetch count f16 values into L2, one request per 64-byte line.
inline void prefetch_f16(const uint16_t* p, int64_t count) {
  for (int64_t i = 0; i < count; i += 32) _mm_prefetch(reinterpret_cast<const char*>(p + i), _MM_HINT_T1);
}

// One query row of a work item.
struct TileRow {
  int64_t t;  // token index in the call
  int h;      // query head
  VisibleKeys vis;
  float* scores = nullptr;  // full-length score row of an observed row, else nullptr
};

// Sets s[j - kb] = -inf for keys j in [kb, kb + nk) the row does not see; false when it sees none.
bool mask_invisible(float* s, int64_t kb, int64_t nk, const VisibleKeys& v) {
  const float ninf = -std::numeric_limits<float>::infinity();
  const int64_t ke = kb + nk;
  int64_t at = kb;
  bool any = false;
  for (int r = 0; r < v.n; ++r) {
    const int64_t b = std::clamp(v.begin[r], kb, ke), e = std::clamp(v.end[r], kb, ke);
    if (b >= e) continue;
    for (int64_t j = at; j < b; ++j) s[j - kb] = ninf;
    at = e;
    any = true;
  }
  if (!any) return false;
  for (int64_t j = at; j < ke; ++j) s[j - kb] = ninf;
  return true;
}

struct TileScratch {
  // The work item's KV head: its row map when it is a ring (nullptr: row = position), the
  // bytes of a row, and where a tile's rows are copied when they wrap around the ring.
  const KvRowMap* ring = nullptr;
  int64_t row_bytes = 0;
  std::vector<uint8_t> kg, vg;
  std::vector<TileRow> rows;
  std::vector<float> qs, s, kt, vt, o, m, l;
  std::vector<float> qt, st, ot;  // lane kernel: q^T [hd][8], scores [keys][8], O^T [hd][8]
};

// The nk K and V rows of a tile (kr, vr) as f32: a q8_0 or f16 cache's rows converted into
// the scratch tiles, an f32 cache's read where they are.
void f32_tiles(const AttentionArgs& a, TileScratch& sc, const uint8_t* kr, const uint8_t* vr, int64_t nk,
               const float*& kt, const float*& vt) {
  const int64_t n = nk * a.head_dim;
  if (a.kv_q8_0) {
    q8_0_rows_to_f32(kr, 0, nk, a.head_dim, sc.kt.data());
    q8_0_rows_to_f32(vr, 0, nk, a.head_dim, sc.vt.data());
  } else if (a.kv_f16) {
    f16_rows_to_f32(reinterpret_cast<const uint16_t*>(kr), n, sc.kt.data());
    f16_rows_to_f32(reinterpret_cast<const uint16_t*>(vr), n, sc.vt.data());
  } else {
    kt = reinterpret_cast<const float*>(kr);
    vt = reinterpret_cast<const float*>(vr);
    return;
  }
  kt = sc.kt.data();
  vt = sc.vt.data();
}

// The visible runs of the query rows of a decode register kernel, one entry per lane: row r
// fills lanes r * copies .. r * copies + copies - 1. A row with one run has [b1, e1) empty.
struct LaneRuns {
  alignas(64) int32_t b0[16] = {0}, e0[16] = {0}, b1[16] = {0}, e1[16] = {0};
  int nr = 0, copies = 1;

  LaneRuns(const std::vector<TileRow>& rows, int64_t r0, int nr_, int copies_) : nr(nr_), copies(copies_) {
    for (int r = 0; r < nr; ++r) {
      const VisibleKeys& v = rows[r0 + r].vis;
      for (int c = 0; c < copies; ++c) {
        const int i = r * copies + c;
        b0[i] = static_cast<int32_t>(v.begin[0]);
        e0[i] = static_cast<int32_t>(v.end[0]);
        if (v.n > 1) {
          b1[i] = static_cast<int32_t>(v.begin[1]);
          e1[i] = static_cast<int32_t>(v.end[1]);
        }
      }
    }
  }
  // Does some row see a key of [kb, kb + nk) (any), and does every row see all of them (full)?
  void sight(int64_t kb, int64_t nk, bool& any, bool& full) const {
    any = false;
    full = true;
    for (int i = 0; i < nr * copies; i += copies) {
      full &= (b0[i] <= kb && kb + nk <= e0[i]) || (b1[i] <= kb && kb + nk <= e1[i]);
      any |= (b0[i] < kb + nk && e0[i] > kb) || (b1[i] < kb + nk && e1[i] > kb);
    }
  }
};

// Decode-sized items (a few query rows): up to 8 query rows sit in the lanes of one AVX2
// register, so scores, the online softmax and the V mix are all vertical: for key j,
// s[j] (8 rows) = sum_d q^T[d] * k_j[d] (k_j[d] broadcast), and O^T[d] += p[j] * v_j[d].
// No horizontal sums, and each K/V element is read once for all the rows.
// Rows r0 .. r0 + nr - 1 of sc.rows; keys [k_begin, k_end) of KV base pointers kbase/vbase.
__attribute__((target("avx2,fma,f16c"))) void attend_lanes_avx2(const AttentionArgs& a, TileScratch& sc, int64_t r0,
                                                                int nr, const uint8_t* kbase, const uint8_t* vbase,
                                                                int64_t k_begin, int64_t k_end, int64_t BK) {
  const int hd = a.head_dim;
  const float ninf = -std::numeric_limits<float>::infinity();
  sc.qt.assign(static_cast<size_t>(hd) * 8, 0.0f);
  sc.ot.assign(static_cast<size_t>(hd) * 8, 0.0f);
  sc.st.resize(BK * 8);
  float* qt = sc.qt.data();
  float* ot = sc.ot.data();
  float* st = sc.st.data();
  const LaneRuns runs(sc.rows, r0, nr, 1);
  for (int r = 0; r < nr; ++r)
    for (int d = 0; d < hd; ++d) qt[d * 8 + r] = sc.qs[(r0 + r) * hd + d];
  const __m256i vb0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(runs.b0));
  const __m256i ve0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(runs.e0));
  const __m256i vb1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(runs.b1));
  const __m256i ve1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(runs.e1));
  __m256 m = _mm256_set1_ps(ninf), l = _mm256_setzero_ps();
  for (int64_t kb = k_begin; kb < k_end; kb += BK) {
    const int64_t nk = std::min(BK, k_end - kb);
    bool any, full;
    runs.sight(kb, nk, any, full);
    if (!any) continue;
    const uint8_t* kr = kv_rows_at(kbase, sc.ring, kb, nk, sc.row_bytes, sc.kg);
    const uint8_t* vr = kv_rows_at(vbase, sc.ring, kb, nk, sc.row_bytes, sc.vg);
    // An f16 cache streams from memory at long context: request the K/V tiles kPrefetchTiles
    // ahead into L2 while this one is converted and used; the hardware prefetcher alone does
    // not run far enough ahead (bench_attention --layers 22, decode at 16K, 2 threads: 2.5 ms
    // per layer without, 1.7-2.0 with 32 tiles; 16 tiles and L1 or L3 hints did worse).
    const int64_t ahead = kb + kPrefetchTiles * BK;
    if (a.kv_f16 && !a.kv_q8_0 && ahead < k_end) {
      const int64_t row = sc.ring ? sc.ring->row(ahead) : ahead;
      const int64_t n_ahead = std::min({BK, k_end - ahead, sc.ring ? sc.ring->run(ahead) : BK}) * hd;
      prefetch_f16(reinterpret_cast<const uint16_t*>(kbase) + row * hd, n_ahead);
      prefetch_f16(reinterpret_cast<const uint16_t*>(vbase) + row * hd, n_ahead);
    }
    const float* kt;
    const float* vt;
    f32_tiles(a, sc, kr, vr, nk, kt, vt);
    // Scores, eight keys at a time.
    int64_t j = 0;
    for (; j + 8 <= nk; j += 8) {
      __m256 acc[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) acc[i] = _mm256_setzero_ps();
      const float* k0 = kt + j * hd;
      for (int d = 0; d < hd; ++d) {
        const __m256 q = _mm256_loadu_ps(qt + d * 8);
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) acc[i] = _mm256_fmadd_ps(q, _mm256_broadcast_ss(k0 + i * hd + d), acc[i]);
      }
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) _mm256_storeu_ps(st + (j + i) * 8, acc[i]);
    }
    for (; j < nk; ++j) {
      __m256 s0 = _mm256_setzero_ps();
      for (int d = 0; d < hd; ++d)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(qt + d * 8), _mm256_broadcast_ss(kt + j * hd + d), s0);
      _mm256_storeu_ps(st + j * 8, s0);
    }
    if (a.softcap != 0.0f)
      for (int64_t i = 0; i < nk * 8; ++i) st[i] = a.softcap * std::tanh(st[i] / a.softcap);
    if (!full) {
      const __m256 vninf = _mm256_set1_ps(ninf);
      for (j = 0; j < nk; ++j) {
        const __m256i key = _mm256_set1_epi32(static_cast<int32_t>(kb + j));
        const __m256i in0 = _mm256_andnot_si256(_mm256_cmpgt_epi32(vb0, key), _mm256_cmpgt_epi32(ve0, key));
        const __m256i in1 = _mm256_andnot_si256(_mm256_cmpgt_epi32(vb1, key), _mm256_cmpgt_epi32(ve1, key));
        const __m256 vis = _mm256_castsi256_ps(_mm256_or_si256(in0, in1));
        _mm256_storeu_ps(st + j * 8, _mm256_blendv_ps(vninf, _mm256_loadu_ps(st + j * 8), vis));
      }
    }
    for (int r = 0; r < nr; ++r)
      if (float* row = sc.rows[r0 + r].scores)
        for (j = 0; j < nk; ++j) row[kb + j] = st[j * 8 + r];
    // Online softmax, all rows at once. A row that has seen no key yet keeps m = -inf and
    // shifts by 0 instead, so that nothing turns into NaN.
    __m256 mx = _mm256_set1_ps(ninf);
    for (j = 0; j < nk; ++j) mx = _mm256_max_ps(mx, _mm256_loadu_ps(st + j * 8));
    const __m256 m_new = _mm256_max_ps(m, mx);
    const __m256 shift = _mm256_andnot_ps(_mm256_cmp_ps(m_new, _mm256_set1_ps(ninf), _CMP_EQ_OQ), m_new);
    const __m256 c = lanes8::exp_nonpositive(_mm256_sub_ps(m, shift));
    __m256 sum = _mm256_setzero_ps();
    for (j = 0; j < nk; ++j) {
      const __m256 p = lanes8::exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(st + j * 8), shift));
      _mm256_storeu_ps(st + j * 8, p);
      sum = _mm256_add_ps(sum, p);
    }
    l = _mm256_fmadd_ps(l, c, sum);
    m = m_new;
    // O^T = O^T * c + sum_j p[j] v_j, eight dimensions at a time (8 accumulators, p and a
    // broadcast stay within AVX2's 16 registers).
    int d0 = 0;
    for (; d0 + 8 <= hd; d0 += 8) {
      __m256 acc[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) acc[i] = _mm256_mul_ps(_mm256_loadu_ps(ot + (d0 + i) * 8), c);
      for (j = 0; j < nk; ++j) {
        const __m256 p = _mm256_loadu_ps(st + j * 8);
        const float* v = vt + j * hd + d0;
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) acc[i] = _mm256_fmadd_ps(p, _mm256_broadcast_ss(v + i), acc[i]);
      }
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) _mm256_storeu_ps(ot + (d0 + i) * 8, acc[i]);
    }
    for (; d0 < hd; ++d0) {
      __m256 acc = _mm256_mul_ps(_mm256_loadu_ps(ot + d0 * 8), c);
      for (j = 0; j < nk; ++j)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(st + j * 8), _mm256_broadcast_ss(vt + j * hd + d0), acc);
      _mm256_storeu_ps(ot + d0 * 8, acc);
    }
  }
  alignas(32) float mv[8], lv[8];
  _mm256_store_ps(mv, m);
  _mm256_store_ps(lv, l);
  for (int r = 0; r < nr; ++r) {
    sc.m[r0 + r] = mv[r];
    sc.l[r0 + r] = lv[r];
    for (int d = 0; d < hd; ++d) sc.o[(r0 + r) * hd + d] = ot[d * 8 + r];
  }
}

// ---- Decode kernel for AVX-512: query rows and key pairs in the lanes ----
//
// Up to 8 query rows of one GQA group against tiles of 32 keys; lane 2r + p of a vector holds
// row r and the even (p = 0) or odd (p = 1) key of a pair. It needs no broadcast of single
// cache elements (the 8-lane kernel above broadcasts every K and V element from an f32 copy of
// the tile, and those loads bound it at about twice its FMA count):
//   scores: the tile's K is converted once into key pairs (k_2i[d], k_2i+1[d]) side by side,
//     then for each dimension one 64-bit broadcast of a pair feeds 16 multiply-adds (8 rows x
//     2 keys). The pair interleave reorders the dimensions; q is laid out in the same order.
//   softmax: vertical over the 16 pair vectors; a row's two lanes agree after one swap.
//   V mix: O[r][32 dims] stays in registers over the tile, O[r][d..] += p[r][j] * V[j][d..],
//     with V read straight from the cache (f16 converted in the load; q8_0 rows converted
//     from int8 and multiplied by their block's scale in the load, 32 dimensions = one block).
// A q8_0 cache thus streams 68 bytes a row (head_dim 64) instead of f16's 128, with no f32
// copy of the tile, and its scores and outputs are those of an f32 cache holding the
// dequantized values, bit for bit (the same operations on the same f32 values).
// It reads each tile front to back and leaves the prefetching to the hardware: prefetching 32
// tiles ahead, as the 8-lane kernel does, made it slower at long context (decode at 16K, 22
// layers' caches, 2 threads: 1.5-1.75 ms per layer against 1.1-1.4 without).
constexpr int kKeyTile = 32;  // keys per tile of the AVX-512 decode kernel
constexpr int kPairs = kKeyTile / 2;

#pragma GCC diagnostic push  // as for the helpers above
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

// Lanes 2r and 2r + 1 exchanged.
RHEAD_AVX512 RHEAD_INLINE __m512 swap_pair_lanes(__m512 x) { return _mm512_permute_ps(x, 0xB1); }

// The dimension that slot s of the pair layout holds: per 16 dimensions, unpacklo_ps then
// unpackhi_ps of two keys' values give, in 128-bit lane k, dimensions 4k, 4k + 1 (lo) and
// 4k + 2, 4k + 3 (hi), each as a (key 2i, key 2i + 1) pair.
int pair_slot_dim(int s) {
  const int c = s / 16, w = s % 16, hi = w / 8, k = (w % 8) / 2, e = w % 2;
  return 16 * c + 4 * k + 2 * hi + e;
}

// NR rows r0 .. r0 + NR - 1 of sc.rows (NR <= 8); keys [k_begin, k_end); head_dim % 16 == 0.
template <int NR, KvType T>
RHEAD_AVX512 void attend_pairs_avx512(const AttentionArgs& a, TileScratch& sc, int64_t r0, const uint8_t* kbase,
                                      const uint8_t* vbase, int64_t k_begin, int64_t k_end) {
  const int hd = a.head_dim;
  const int64_t rb = sc.row_bytes;  // bytes of one cache row
  const float ninf = -std::numeric_limits<float>::infinity();
  sc.kt.resize(static_cast<size_t>(hd) * kKeyTile);  // K pairs: [slot / 8][pair][slot % 8][2]
  sc.qt.assign(static_cast<size_t>(hd) * 16, 0.0f);  // q: [slot][lane 2r + p]
  sc.ot.assign(static_cast<size_t>(NR) * hd, 0.0f);  // O: [r][hd]
  sc.st.resize(static_cast<size_t>(kPairs) * 16);    // P: [pair][lane]
  float* kp = sc.kt.data();
  float* qq = sc.qt.data();
  float* ot = sc.ot.data();
  float* pt = sc.st.data();
  const LaneRuns runs(sc.rows, r0, NR, 2);
  for (int r = 0; r < NR; ++r) {
    const float* q = sc.qs.data() + (r0 + r) * hd;
    for (int s = 0; s < hd; ++s) qq[s * 16 + 2 * r] = qq[s * 16 + 2 * r + 1] = q[pair_slot_dim(s)];
  }
  const __m512i vb0 = _mm512_load_si512(runs.b0), ve0 = _mm512_load_si512(runs.e0);
  const __m512i vb1 = _mm512_load_si512(runs.b1), ve1 = _mm512_load_si512(runs.e1);
  const __m512i parity = _mm512_setr_epi32(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1);
  const __m512 vninf = _mm512_set1_ps(ninf);
  __m512 m = vninf, l = _mm512_setzero_ps();  // per lane; a row's two lanes agree
  for (int64_t kb = k_begin; kb < k_end; kb += kKeyTile) {
    const int nk = static_cast<int>(std::min<int64_t>(kKeyTile, k_end - kb));
    bool any, full;
    runs.sight(kb, nk, any, full);
    full &= nk == kKeyTile;  // a short tile masks its missing keys
    if (!any) continue;
    const uint8_t* kr = kv_rows_at(kbase, sc.ring, kb, nk, sc.row_bytes, sc.kg);
    // K pairs; keys past nk are 0.
    const int n_pairs = (nk + 1) / 2;
    if (n_pairs < kPairs)
      for (int b = 0; b < hd / 8; ++b) std::fill_n(kp + (b * kPairs + n_pairs) * 16, (kPairs - n_pairs) * 16, 0.0f);
    for (int i = 0; i < n_pairs; ++i) {
      const int64_t j = 2 * i;  // within the tile
      for (int d0 = 0; d0 < hd; d0 += 16) {
        const __m512 x = load16<T>(kr + j * rb, d0);
        const __m512 y = 2 * i + 1 < nk ? load16<T>(kr + (j + 1) * rb, d0) : _mm512_setzero_ps();
        _mm512_storeu_ps(kp + ((d0 / 8) * kPairs + i) * 16, _mm512_unpacklo_ps(x, y));
        _mm512_storeu_ps(kp + ((d0 / 8 + 1) * kPairs + i) * 16, _mm512_unpackhi_ps(x, y));
      }
    }
    // Scores: s[i] lane 2r + p = row r . key kb + 2i + p.
    __m512 s[kPairs];
#pragma GCC unroll 16
    for (int i = 0; i < kPairs; ++i) s[i] = _mm512_setzero_ps();
    for (int d = 0; d < hd; ++d) {
      const __m512 q = _mm512_loadu_ps(qq + d * 16);
      const float* kd = kp + (d / 8) * kPairs * 16 + (d % 8) * 2;
#pragma GCC unroll 16
      for (int i = 0; i < kPairs; ++i) {
        const __m512 kk = _mm512_castpd_ps(_mm512_set1_pd(*reinterpret_cast<const double*>(kd + i * 16)));
        s[i] = _mm512_fmadd_ps(q, kk, s[i]);
      }
    }
    // Soft-cap, then -inf for keys a row does not see (and past the tile's end).
    if (a.softcap != 0.0f)
      for (int i = 0; i < n_pairs; ++i) {
        alignas(64) float tmp[16];
        _mm512_store_ps(tmp, s[i]);
        for (float& x : tmp) x = a.softcap * std::tanh(x / a.softcap);
        s[i] = _mm512_load_ps(tmp);
      }
    if (!full) {
      const __m512i vend = _mm512_set1_epi32(static_cast<int32_t>(kb + nk));
#pragma GCC unroll 16
      for (int i = 0; i < kPairs; ++i) {
        const __m512i key = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(kb + 2 * i)), parity);
        const __mmask16 in = ((_mm512_cmple_epi32_mask(vb0, key) & _mm512_cmpgt_epi32_mask(ve0, key)) |
                              (_mm512_cmple_epi32_mask(vb1, key) & _mm512_cmpgt_epi32_mask(ve1, key))) &
                             _mm512_cmpgt_epi32_mask(vend, key);
        s[i] = _mm512_mask_blend_ps(in, vninf, s[i]);
      }
    }
    for (int r = 0; r < NR; ++r)
      if (float* row = sc.rows[r0 + r].scores) {
        alignas(64) float tmp[16];
        for (int i = 0; i < n_pairs; ++i) {
          _mm512_store_ps(tmp, s[i]);
          row[kb + 2 * i] = tmp[2 * r];
          if (2 * i + 1 < nk) row[kb + 2 * i + 1] = tmp[2 * r + 1];
        }
      }
    // Online softmax, all rows at once. A row that has seen no key yet keeps m = -inf and
    // shifts by 0 instead, so that nothing turns into NaN.
    __m512 mx = s[0];
#pragma GCC unroll 16
    for (int i = 1; i < kPairs; ++i) mx = _mm512_max_ps(mx, s[i]);
    const __m512 m_new = _mm512_max_ps(m, _mm512_max_ps(mx, swap_pair_lanes(mx)));
    const __m512 shift = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(m_new, vninf, _CMP_NEQ_OQ), m_new);
    const __m512 c = lanes16::exp_nonpositive(_mm512_sub_ps(m, shift));
    __m512 sum = _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int i = 0; i < kPairs; ++i) {
      const __m512 p = lanes16::exp_nonpositive(_mm512_sub_ps(s[i], shift));
      _mm512_storeu_ps(pt + i * 16, p);
      sum = _mm512_add_ps(sum, p);
    }
    l = _mm512_fmadd_ps(l, c, _mm512_add_ps(sum, swap_pair_lanes(sum)));
    m = m_new;
    alignas(64) float cv[16];
    _mm512_store_ps(cv, c);
    // O = O * c + P . V, 32 dimensions at a time (16 when head_dim is an odd multiple of 16).
    const uint8_t* vt = kv_rows_at(vbase, sc.ring, kb, nk, sc.row_bytes, sc.vg);
    int d0 = 0;
    for (; d0 + 32 <= hd; d0 += 32) {
      __m512 o[NR][2];
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) {
        const __m512 cr = _mm512_set1_ps(cv[2 * r]);
        o[r][0] = _mm512_mul_ps(_mm512_loadu_ps(ot + r * hd + d0), cr);
        o[r][1] = _mm512_mul_ps(_mm512_loadu_ps(ot + r * hd + d0 + 16), cr);
      }
      for (int j = 0; j < nk; ++j) {
        const __m512 v0 = load16<T>(vt + j * rb, d0), v1 = load16<T>(vt + j * rb, d0 + 16);
        const float* pj = pt + (j / 2) * 16 + (j % 2);
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) {
          const __m512 p = _mm512_set1_ps(pj[2 * r]);
          o[r][0] = _mm512_fmadd_ps(p, v0, o[r][0]);
          o[r][1] = _mm512_fmadd_ps(p, v1, o[r][1]);
        }
      }
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) {
        _mm512_storeu_ps(ot + r * hd + d0, o[r][0]);
        _mm512_storeu_ps(ot + r * hd + d0 + 16, o[r][1]);
      }
    }
    if (d0 < hd) {
      __m512 o[NR];
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) o[r] = _mm512_mul_ps(_mm512_loadu_ps(ot + r * hd + d0), _mm512_set1_ps(cv[2 * r]));
      for (int j = 0; j < nk; ++j) {
        const __m512 v0 = load16<T>(vt + j * rb, d0);
        const float* pj = pt + (j / 2) * 16 + (j % 2);
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) o[r] = _mm512_fmadd_ps(_mm512_set1_ps(pj[2 * r]), v0, o[r]);
      }
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) _mm512_storeu_ps(ot + r * hd + d0, o[r]);
    }
  }
  alignas(64) float mv[16], lv[16];
  _mm512_store_ps(mv, m);
  _mm512_store_ps(lv, l);
  for (int r = 0; r < NR; ++r) {
    sc.m[r0 + r] = mv[2 * r];
    sc.l[r0 + r] = lv[2 * r];
    std::copy(ot + r * hd, ot + (r + 1) * hd, sc.o.data() + (r0 + r) * hd);
  }
}

template <KvType T>
void attend_pairs_avx512_rows(const AttentionArgs& a, TileScratch& sc, int64_t r0, int nr, const uint8_t* kbase,
                              const uint8_t* vbase, int64_t k_begin, int64_t k_end) {
  switch (nr) {
    case 1: return attend_pairs_avx512<1, T>(a, sc, r0, kbase, vbase, k_begin, k_end);
    case 2: return attend_pairs_avx512<2, T>(a, sc, r0, kbase, vbase, k_begin, k_end);
    case 3: return attend_pairs_avx512<3, T>(a, sc, r0, kbase, vbase, k_begin, k_end);
    case 4: return attend_pairs_avx512<4, T>(a, sc, r0, kbase, vbase, k_begin, k_end);
    case 5: return attend_pairs_avx512<5, T>(a, sc, r0, kbase, vbase, k_begin, k_end);
    case 6: return attend_pairs_avx512<6, T>(a, sc, r0, kbase, vbase, k_begin, k_end);
    case 7: return attend_pairs_avx512<7, T>(a, sc, r0, kbase, vbase, k_begin, k_end);
    default: return attend_pairs_avx512<8, T>(a, sc, r0, kbase, vbase, k_begin, k_end);
  }
}
#pragma GCC diagnostic pop

struct TilePlan {
  int group = 1;  // query heads per KV head
  int64_t block_tokens = 1;
  int64_t n_blocks = 1;  // query blocks
  int64_t n_slices = 1;  // key slices per (KV head, query block)
  int64_t tile_keys = kPrefillKeys;
  bool lanes = false;    // decode-sized: the 8-lane kernel instead of sgemm tiles
  bool keys512 = false;  // ... or the AVX-512 decode kernel (attend_pairs_avx512)
  // Key slice results when n_slices > 1: [T * n_head][n_slices] maxima and sums, and outputs.
  std::vector<float> slice_m, slice_l, slice_o;
  // Full-length score rows of observed (token, head) pairs: [n_obs_rows][n_keys].
  std::vector<int64_t> score_row;  // [T * n_head]: index into scores, or -1
  float* scores = nullptr;
};

// Storage of the full-length score rows, kept from call to call by each calling thread: a
// fresh 2 MB buffer per call (32 observed heads at 16K keys) cost a page fault per 4 KB page,
// as much as the decode kernel's own work.
float* score_rows(size_t n) {
  static thread_local std::vector<float> pool;
  if (pool.size() < n) pool.resize(n);
  return pool.data();
}

void attend_tile_item(const AttentionArgs& a, TilePlan& plan, int g, int64_t qb, int64_t slice, TileScratch& sc) {
  const int hd = a.head_dim, G = plan.group;
  const int64_t t0 = qb * plan.block_tokens, t1 = std::min(a.n_tokens, t0 + plan.block_tokens);
  sc.rows.clear();
  for (int64_t t = t0; t < t1; ++t)
    for (int h = g * G; h < (g + 1) * G; ++h) {
      if (a.overrides && a.overrides[h] != HeadOverride::none) continue;
      TileRow r{t, h, visible_keys(a, a.pos0 + t, h)};
      const int64_t sr = plan.score_row[t * a.n_head + h];
      if (sr >= 0) r.scores = plan.scores + sr * (a.pos0 + a.n_tokens);
      sc.rows.push_back(r);
    }
  const int64_t M = static_cast<int64_t>(sc.rows.size());
  if (M == 0) return;
  // Keys this item covers: its slice of [first visible key of any row, last query + 1).
  int64_t lo = a.pos0 + t1;
  for (const TileRow& r : sc.rows) lo = std::min(lo, r.vis.begin[0]);
  const int64_t hi = a.pos0 + t1;
  const int64_t k_begin = lo + (hi - lo) * slice / plan.n_slices, k_end = lo + (hi - lo) * (slice + 1) / plan.n_slices;

  const float scale = score_scale(a);
  const int64_t BK = plan.tile_keys;
  sc.qs.resize(M * hd);
  sc.s.resize(M * BK);
  sc.o.assign(M * hd, 0.0f);
  sc.m.assign(M, -std::numeric_limits<float>::infinity());
  sc.l.assign(M, 0.0f);
  sc.kt.resize(BK * hd);
  sc.vt.resize(BK * hd);
  for (int64_t r = 0; r < M; ++r) {
    const float* q = a.q + (sc.rows[r].t * a.n_head + sc.rows[r].h) * hd;
    for (int i = 0; i < hd; ++i) sc.qs[r * hd + i] = q[i] * scale;
  }
  const uint8_t* kbase = kv_head_rows(a, g, false);
  const uint8_t* vbase = kv_head_rows(a, g, true);
  sc.ring = kv_ring(a, g);
  sc.row_bytes = kv_row_bytes(kv_type_of(a), hd);
  for (int64_t r0 = 0; r0 < M && plan.lanes; r0 += 8) {
    const int nr = static_cast<int>(std::min<int64_t>(8, M - r0));
    if (!plan.keys512)
      attend_lanes_avx2(a, sc, r0, nr, kbase, vbase, k_begin, k_end, BK);
    else if (a.kv_q8_0)
      attend_pairs_avx512_rows<KvType::q8_0>(a, sc, r0, nr, kbase, vbase, k_begin, k_end);
    else if (a.kv_f16)
      attend_pairs_avx512_rows<KvType::f16>(a, sc, r0, nr, kbase, vbase, k_begin, k_end);
    else
      attend_pairs_avx512_rows<KvType::f32>(a, sc, r0, nr, kbase, vbase, k_begin, k_end);
  }
  std::vector<char> sees(plan.lanes ? 0 : M);
  for (int64_t kb = k_begin; kb < k_end && !plan.lanes; kb += BK) {
    const int64_t nk = std::min(BK, k_end - kb);
    bool any = false;
    for (int64_t r = 0; r < M; ++r) {
      const VisibleKeys& v = sc.rows[r].vis;
      sees[r] = 0;
      for (int x = 0; x < v.n; ++x) sees[r] |= v.begin[x] < kb + nk && v.end[x] > kb;
      any |= sees[r];
    }
    if (!any) continue;
    const uint8_t* kr = kv_rows_at(kbase, sc.ring, kb, nk, sc.row_bytes, sc.kg);
    const uint8_t* vr = kv_rows_at(vbase, sc.ring, kb, nk, sc.row_bytes, sc.vg);
    const float* kt;
    const float* vt;
    f32_tiles(a, sc, kr, vr, nk, kt, vt);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(M), static_cast<int>(nk), hd, 1.0f,
                sc.qs.data(), hd, kt, hd, 0.0f, sc.s.data(), static_cast<int>(BK));
    for (int64_t r = 0; r < M; ++r) {
      float* s = sc.s.data() + r * BK;
      if (!sees[r] || !mask_invisible(s, kb, nk, sc.rows[r].vis)) {
        std::fill(s, s + nk, 0.0f);
        continue;
      }
      if (a.softcap != 0.0f)
        for (int64_t j = 0; j < nk; ++j) s[j] = a.softcap * std::tanh(s[j] / a.softcap);  // tanh(-inf) = -1: remask
      if (a.softcap != 0.0f) mask_invisible(s, kb, nk, sc.rows[r].vis);
      if (sc.rows[r].scores) std::copy(s, s + nk, sc.rows[r].scores + kb);
      const float mx = max_of(s, nk);
      const float m_new = std::max(sc.m[r], mx);
      const float c = std::exp(sc.m[r] - m_new);  // 0 when m was -inf
      const float sum = exp_shift_sum(s, nk, m_new);
      sc.l[r] = sc.l[r] * c + sum;
      if (c != 1.0f)
        for (int i = 0; i < hd; ++i) sc.o[r * hd + i] *= c;
      sc.m[r] = m_new;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(M), hd, static_cast<int>(nk), 1.0f,
                sc.s.data(), static_cast<int>(BK), vt, hd, 1.0f, sc.o.data(), hd);
  }
  for (int64_t r = 0; r < M; ++r) {
    const int64_t pair = sc.rows[r].t * a.n_head + sc.rows[r].h;
    if (plan.n_slices == 1) {
      float* out = a.out + pair * hd;
      const float inv = 1.0f / sc.l[r];
      for (int i = 0; i < hd; ++i) out[i] = sc.o[r * hd + i] * inv;
    } else {
      const int64_t at = pair * plan.n_slices + slice;
      plan.slice_m[at] = sc.m[r];
      plan.slice_l[at] = sc.l[r];
      std::copy(sc.o.data() + r * hd, sc.o.data() + (r + 1) * hd, plan.slice_o.data() + at * hd);
    }
  }
}

void run_tiled(const AttentionArgs& a, TilePlan& plan) {
  single_threaded_blas_here();
  const int64_t items = a.n_kv_head * plan.n_blocks * plan.n_slices;
  const int64_t pairs = a.n_tokens * a.n_head;
  const int hd = a.head_dim;
  const int64_t work = (a.pos0 + a.n_tokens) * hd * pairs;
#pragma omp parallel if (items > 1 && work > (1 << 17))
  {
    TileScratch sc;
    // Later query blocks see more keys: hand them out first.
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < items; ++i) {
      const int64_t qb = plan.n_blocks - 1 - i / (a.n_kv_head * plan.n_slices);
      const int64_t rest = i % (a.n_kv_head * plan.n_slices);
      attend_tile_item(a, plan, static_cast<int>(rest / plan.n_slices), qb, rest % plan.n_slices, sc);
    }
  }
  if (plan.n_slices > 1) {
    // Merge the key slices: m = max m_s, l = sum l_s exp(m_s - m), O = sum O_s exp(m_s - m) / l.
    for (int64_t pair = 0; pair < pairs; ++pair) {
      const int h = static_cast<int>(pair % a.n_head);
      if (a.overrides && a.overrides[h] != HeadOverride::none) continue;
      const float* ms = plan.slice_m.data() + pair * plan.n_slices;
      const float* ls = plan.slice_l.data() + pair * plan.n_slices;
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t s = 0; s < plan.n_slices; ++s) m = std::max(m, ms[s]);
      float l = 0.0f;
      float* out = a.out + pair * hd;
      std::fill(out, out + hd, 0.0f);
      for (int64_t s = 0; s < plan.n_slices; ++s) {
        if (ls[s] == 0.0f) continue;
        const float w = std::exp(ms[s] - m);
        l += ls[s] * w;
        const float* o = plan.slice_o.data() + (pair * plan.n_slices + s) * hd;
        for (int i = 0; i < hd; ++i) out[i] += w * o[i];
      }
      const float inv = 1.0f / l;
      for (int i = 0; i < hd; ++i) out[i] *= inv;
    }
  }
  // Probes of the observed rows, from their full score rows.
  if (a.obs_slot) {
    const int64_t n_keys = a.pos0 + a.n_tokens;
#pragma omp parallel for schedule(dynamic, 1) if (pairs > 1)
    for (int64_t pair = 0; pair < pairs; ++pair) {
      const int64_t sr = plan.score_row[pair];
      if (sr < 0) continue;
      const int64_t t = pair / a.n_head;
      const int h = static_cast<int>(pair % a.n_head);
      float* row = plan.scores + sr * n_keys;
      const VisibleKeys vis = visible_keys(a, a.pos0 + t, h);
      const auto [max_logit, argmax] = visible_max(row, vis);
      float sum = 0.0f;
      for (int r = 0; r < vis.n; ++r) sum += exp_shift_sum(row + vis.begin[r], vis.end[r] - vis.begin[r], max_logit);
      write_probes(a.probes, a.obs_slot[t] * a.probes.obs_stride + h, row, vis, argmax, 1.0f / sum, a.pos0 + t + 1);
    }
  }
}

TilePlan plan_tiles(const AttentionArgs& a, KernelISA isa) {
  TilePlan p;
  p.group = a.n_head / a.n_kv_head;
  p.block_tokens = std::max<int64_t>(1, kTileRows / p.group);
  p.n_blocks = (a.n_tokens + p.block_tokens - 1) / p.block_tokens;
  const int64_t n_keys = a.pos0 + a.n_tokens;
  p.lanes = isa != KernelISA::Scalar && kHaveAvx2 && std::min(p.block_tokens, a.n_tokens) * p.group <= kMaxLaneRows;
  // The key-pair kernel reads every cache type straight from the cache (q8_0 dequantized in
  // its loads).
  p.keys512 = p.lanes && isa == KernelISA::AVX512 && kHaveAvx512 && a.head_dim % 16 == 0;
  p.tile_keys = p.keys512 ? kKeyTile : p.lanes ? kLaneKeys : kPrefillKeys;
  // Flash-decoding: when the work items are fewer than kSliceWorkers, split the keys. The
  // split depends on the shape only, never on the thread count, so a result is the same bit
  // for bit with 1 thread or 64.
  const int64_t items = a.n_kv_head * p.n_blocks;
  if (kSliceWorkers > items)
    p.n_slices = std::clamp<int64_t>((kSliceWorkers + items - 1) / items, 1, n_keys / kMinSliceKeys);
  p.n_slices = std::max<int64_t>(1, p.n_slices);
  const int64_t pairs = a.n_tokens * a.n_head;
  if (p.n_slices > 1) {
    p.slice_m.assign(pairs * p.n_slices, -std::numeric_limits<float>::infinity());
    p.slice_l.assign(pairs * p.n_slices, 0.0f);
    p.slice_o.assign(pairs * p.n_slices * a.head_dim, 0.0f);
  }
  p.score_row.assign(pairs, -1);
  if (a.obs_slot) {
    int64_t n_rows = 0;
    for (int64_t t = 0; t < a.n_tokens; ++t)
      if (a.obs_slot[t] >= 0)
        for (int h = 0; h < a.n_head; ++h)
          if (!a.overrides || a.overrides[h] == HeadOverride::none) p.score_row[t * a.n_head + h] = n_rows++;
    p.scores = score_rows(static_cast<size_t>(n_rows * n_keys));
  }
  return p;
}

void run_rows(const AttentionArgs& a, bool fast, bool overridden_only) {
  const int64_t pairs = a.n_tokens * a.n_head;
  const int64_t max_keys = a.pos0 + a.n_tokens;
#pragma omp parallel if (pairs > 1 && max_keys * a.head_dim * pairs > (1 << 17))
  {
    std::vector<float> row(static_cast<size_t>(max_keys));
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < pairs; ++i) {
      const int h = static_cast<int>(i % a.n_head);
      if (overridden_only && (!a.overrides || a.overrides[h] == HeadOverride::none)) continue;
      attend_one(a, i / a.n_head, h, row.data(), fast);
    }
  }
}

void run(const AttentionArgs& a, bool fast, KernelISA isa) {
  if (fast) {
    TilePlan plan = plan_tiles(a, isa);
    run_tiled(a, plan);
    bool any_override = false;
    for (int h = 0; a.overrides && h < a.n_head; ++h) any_override |= a.overrides[h] != HeadOverride::none;
    if (any_override) run_rows(a, fast, true);
  } else {
    run_rows(a, false, false);
  }
  if (a.head_out_sum) {
    for (int64_t t = 0; t < a.n_tokens; ++t)
      for (int64_t i = 0; i < static_cast<int64_t>(a.n_head) * a.head_dim; ++i)
        a.head_out_sum[i] += a.out[t * a.n_head * a.head_dim + i];
  }
}

}  // namespace

void attention(const AttentionArgs& a) { run(a, true, best_isa()); }
void attention_isa(KernelISA isa, const AttentionArgs& a) {
  if (!cpu_has_isa(isa)) fail("attention", std::string("this CPU lacks ") + isa_name(isa));
  run(a, true, isa);
}
void attention_ref(const AttentionArgs& a) { run(a, false, KernelISA::Scalar); }

}  // namespace rhead

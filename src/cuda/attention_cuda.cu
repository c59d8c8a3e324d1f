// Attention on the GPU: flash-attention prefill, split-K row kernel with probes, and the
// combine step (see attention_cuda.cuh for the plan). Visibility, overrides and probes follow
// ops/attention.h exactly; the tests compare every output with attention_ref.
#include <cuda_fp16.h>
#include <mma.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "cuda/attention_cuda.cuh"
#include "cuda/flash_prefill.cuh"
#include "ops/kv_visibility.h"

namespace rhead::cuda {
namespace {

constexpr float kNegInf = -INFINITY;
constexpr int kThreads = 128;    // every attention kernel: 4 warps
constexpr int kSplitKeys = 256;  // keys per split of the row kernel
constexpr int kMaxGroup = 8;     // query heads per row-kernel block
constexpr int kFlashRows = 64;   // query rows (token, head) per flash block: 4 warps x 16
constexpr int kFlashKeys = 32;   // keys per flash tile: one per lane
constexpr int kMaxTopK = 64;

__device__ __forceinline__ float load_kv(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ float load_kv(const float* p) { return *p; }

// Eight consecutive cache elements (16- or 32-byte aligned: head_dim is a multiple of 8), or zeros.
__device__ __forceinline__ void load8(const __half* p, bool valid, float* y) {
  if (!valid) {
#pragma unroll
    for (int e = 0; e < 8; ++e) y[e] = 0.0f;
    return;
  }
  uint4 raw = *reinterpret_cast<const uint4*>(p);
  const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const float2 f = __half22float2(h[e]);
    y[2 * e] = f.x;
    y[2 * e + 1] = f.y;
  }
}
__device__ __forceinline__ void load8(const float* p, bool valid, float* y) {
  const float4 a = valid ? reinterpret_cast<const float4*>(p)[0] : make_float4(0, 0, 0, 0);
  const float4 b = valid ? reinterpret_cast<const float4*>(p)[1] : make_float4(0, 0, 0, 0);
  y[0] = a.x, y[1] = a.y, y[2] = a.z, y[3] = a.w, y[4] = b.x, y[5] = b.y, y[6] = b.z, y[7] = b.w;
}

// Visibility of key j to a query at position i of a head (ops/kv_visibility.h's rule).
struct Visibility {
  int64_t i, lo, head_window, sink;
  __device__ bool operator()(int64_t j) const { return kv_sees<int64_t>(i, j, lo, head_window, sink); }
};

__device__ __forceinline__ Visibility visibility(int64_t i, int64_t window, const int32_t* head_window,
                                                 int64_t head_sink, int h) {
  Visibility v;
  v.i = i;
  v.lo = kv_window_start<int64_t>(i, window);
  v.head_window = head_window ? head_window[h] : 0;
  v.sink = head_sink;
  return v;
}

__device__ __forceinline__ float transform_score(float dot, float scale, float softcap) {
  float s = dot * scale;
  if (softcap != 0.0f) s = softcap * tanhf(s / softcap);
  return s;
}

// (score, position) pairs: larger score first, earlier position among equals; position -1
// marks "none" and loses to everything.
__device__ __forceinline__ bool better(float s, int64_t j, float bs, int64_t bj) {
  if (j < 0) return false;
  if (bj < 0) return true;
  return s > bs || (s == bs && j < bj);
}

__device__ __forceinline__ void warp_best(float& s, int64_t& j) {
  for (int off = 16; off > 0; off >>= 1) {
    const float os = __shfl_xor_sync(0xffffffffu, s, off);
    const int64_t oj = __shfl_xor_sync(0xffffffffu, j, off);
    if (better(os, oj, s, j)) {
      s = os;
      j = oj;
    }
  }
}

// The best finite score of srow[0, n) (key j0 + jl; ties to the earliest key), in every lane
// of the warp; bj = -1 when there is none.
__device__ __forceinline__ void warp_best_of(const float* srow, int64_t n, int64_t j0, int lane, float& bs,
                                             int64_t& bj) {
  bs = kNegInf;
  bj = -1;
  for (int64_t jl = lane; jl < n; jl += 32)
    if (srow[jl] != kNegInf && better(srow[jl], j0 + jl, bs, bj)) {
      bs = srow[jl];
      bj = j0 + jl;
    }
  warp_best(bs, bj);
}

__device__ __forceinline__ float warp_sum(float x) {
  for (int off = 16; off > 0; off >>= 1) x += __shfl_xor_sync(0xffffffffu, x, off);
  return x;
}

__device__ __forceinline__ float warp_max(float x) {
  for (int off = 16; off > 0; off >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, off));
  return x;
}

// The partial results of the split-key row kernel, one entry per (row, head, split), which
// the combine kernel joins.
struct SplitParts {
  float* m;
  float* l;
  float* acc;  // [..., hd]
  int32_t* arg;
  float* span;
  float* sink;      // score of position 0 (-inf when not visible or not in the split)
  int32_t* tk_pos;  // [..., top_k]
  float* tk_s;
};

// ---------------------------------------------------------------------------------------
// Row kernel: grid (n_split, n_kv_head * n_head_chunks, n_rows), kThreads threads.
// The call's geometry (FlashPrefillArgs: q, cache, heads, windows, overrides, scale; its out,
// n_tokens and head_means are the combine's business) and the row kernel's own settings.
struct RowParams : FlashPrefillArgs {
  const int32_t* rows = nullptr;  // [n_rows] token index t of each row
  int group = 0, n_head_chunks = 0, lanes_per_key = 0;
  int n_split = 0;
  bool probes = false;  // compute the probe partials
  int top_k = 0;
  int64_t span_begin = 0, span_end = 0;
  // partials, indexed ((row * n_head + h) * n_split + split)
  SplitParts part;  // written here, read by the combine kernel
  // Per-key weight probes: exp(s_j - m of j's split) of keys j < key_len, at
  // key_w[(row * n_head + h) * key_len + j] (zeroed before; the combine normalizes them).
  float* key_w = nullptr;
  int64_t key_len = 0;
};

template <typename KT>
__global__ void __launch_bounds__(kThreads) attention_rows_kernel(RowParams p) {
  extern __shared__ float smem[];
  float* sc = smem;                             // [kMaxGroup][kSplitKeys] scores, then weights
  float* accp = smem + kMaxGroup * kSplitKeys;  // [jparts][kMaxGroup][hd] partial outputs

  const int split = blockIdx.x;
  const int kvh = blockIdx.y / p.n_head_chunks;
  const int chunk = blockIdx.y % p.n_head_chunks;
  const int row = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int hd = p.head_dim;
  const int h0 = kvh * p.group + chunk * kMaxGroup;
  const int gc = min(kMaxGroup, p.group - chunk * kMaxGroup);
  const int64_t t = p.rows[row];
  const int64_t i = p.pos0 + t;
  const int64_t j0 = static_cast<int64_t>(split) * kSplitKeys;
  const int64_t j1 = min(j0 + kSplitKeys, i + 1);
  const int64_t n = j1 > j0 ? j1 - j0 : 0;
  const DeviceKvHead<const KT> kvs = device_kv_head<const KT>(p.k, p.v, p.head_stride, p.kv_heads, kvh);

  // Phase 1: scores of the split's keys for the gc heads. A key takes lanes_per_key lanes,
  // 8 dimensions each.
  const int lpk = p.lanes_per_key;
  const int keys_per_warp = 32 / lpk;
  const int sub = lane % lpk, slot = lane / lpk;
  const int d0 = sub * 8;
  float qr[kMaxGroup][8];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g)
#pragma unroll
    for (int e = 0; e < 8; ++e) qr[g][e] = (g < gc && d0 + e < hd) ? p.q[(t * p.n_head + h0 + g) * hd + d0 + e] : 0.0f;
  Visibility vis[kMaxGroup];
  bool uniform[kMaxGroup];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    vis[g] = visibility(i, p.window, p.head_window, p.head_sink, g < gc ? h0 + g : h0);
    uniform[g] = p.overrides && g < gc && p.overrides[h0 + g] == static_cast<uint8_t>(HeadOverride::uniform);
  }
  for (int64_t base = warp * keys_per_warp; base < n; base += 4 * keys_per_warp) {
    const int64_t jl = base + slot;
    const bool valid = jl < n;
    float kv8[8];
    load8(kvs.k + kvs.row(valid ? j0 + jl : 0) * hd + d0, valid && d0 < hd, kv8);
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) {
      if (g >= gc) break;
      float dot = 0.0f;
#pragma unroll
      for (int e = 0; e < 8; ++e) dot += qr[g][e] * kv8[e];
      for (int off = lpk / 2; off > 0; off >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, off);
      if (valid && sub == 0) {
        const int64_t j = j0 + jl;
        float s = kNegInf;
        if (vis[g](j)) s = uniform[g] ? 0.0f : transform_score(dot, p.scale, p.softcap);
        sc[g * kSplitKeys + jl] = s;
      }
    }
  }
  __syncthreads();

  // Phase 2: per head (one warp each): max with earliest argmax, probes, weights.
  const size_t part_base = (static_cast<size_t>(row) * p.n_head + h0) * p.n_split + split;
  for (int g = warp; g < gc; g += 4) {
    float* srow = sc + g * kSplitKeys;
    float bs;
    int64_t bj;
    warp_best_of(srow, n, j0, lane, bs, bj);
    const float m = bs;
    const size_t pi = part_base + static_cast<size_t>(g) * p.n_split;
    if (p.probes && p.top_k > 0) {
      // Top-k candidates of this split: repeated best-of-the-rest; picked scores are set to
      // -inf while selecting, then restored.
      for (int r = 0; r < p.top_k; ++r) {
        float cs;
        int64_t cj;
        warp_best_of(srow, n, j0, lane, cs, cj);
        if (lane == 0) {
          p.part.tk_pos[pi * p.top_k + r] = static_cast<int32_t>(cj);
          p.part.tk_s[pi * p.top_k + r] = cs;
          if (cj >= 0) srow[cj - j0] = kNegInf;
        }
        __syncwarp();
      }
      if (lane == 0)
        for (int r = 0; r < p.top_k; ++r) {
          const int32_t cj = p.part.tk_pos[pi * p.top_k + r];
          if (cj >= 0) srow[cj - j0] = p.part.tk_s[pi * p.top_k + r];
        }
      __syncwarp();
    }
    const float s0 = j0 == 0 && n > 0 ? srow[0] : kNegInf;  // score of position 0 (-inf: not visible)
    float l = 0.0f, span = 0.0f;
    for (int64_t jl = lane; jl < n; jl += 32) {
      const float w = m == kNegInf || srow[jl] == kNegInf ? 0.0f : expf(srow[jl] - m);
      l += w;
      const int64_t j = j0 + jl;
      if (j >= p.span_begin && j < p.span_end) span += w;
      if (j < p.key_len) p.key_w[(static_cast<size_t>(row) * p.n_head + h0 + g) * p.key_len + j] = w;
      srow[jl] = w;
    }
    l = warp_sum(l);
    span = warp_sum(span);
    if (lane == 0) {
      p.part.m[pi] = m;
      p.part.l[pi] = l;
      if (p.probes) {
        p.part.arg[pi] = static_cast<int32_t>(bj);
        p.part.span[pi] = span;
        p.part.sink[pi] = s0;
      }
    }
  }
  __syncthreads();

  // Phase 3: partial outputs acc[g][d] = sum_j w[g][j] * v_j[d].
  const int jparts = hd >= kThreads ? 1 : kThreads / hd;
  for (int idx = threadIdx.x; idx < jparts * hd; idx += kThreads) {
    const int d = idx % hd, jp = idx / hd;
    float acc[kMaxGroup];
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) acc[g] = 0.0f;
    for (int64_t jl = jp; jl < n; jl += jparts) {
      const float vd = load_kv(kvs.v + kvs.row(j0 + jl) * hd + d);
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g)
        if (g < gc) acc[g] += sc[g * kSplitKeys + jl] * vd;
    }
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g)
      if (g < gc) accp[(jp * kMaxGroup + g) * hd + d] = acc[g];
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < gc * hd; idx += kThreads) {
    const int g = idx / hd, d = idx % hd;
    float s = 0.0f;
    for (int jp = 0; jp < jparts; ++jp) s += accp[(jp * kMaxGroup + g) * hd + d];
    p.part.acc[(part_base + static_cast<size_t>(g) * p.n_split) * hd + d] = s;
  }
}

// Combine: grid (n_rows, n_head), kThreads threads.
struct CombineParams {
  int n_head, hd, n_split, top_k;
  bool write_out, probes;
  const int32_t* rows;
  const uint8_t* overrides;
  const float* head_means;  // [n_head, hd] or null
  SplitParts part;
  float* out;        // [T, n_head, hd]
  int32_t* out_arg;  // [n_rows, n_head]
  float* out_arg_w;
  float* out_span;
  float* out_sink;
  int32_t* out_tk_pos;  // [n_rows, n_head, top_k]
  float* out_tk_w;
  float* key_w;  // RowParams::key_w, normalized here in place
  int64_t key_len;
};

__global__ void __launch_bounds__(kThreads) attention_combine_kernel(CombineParams p) {
  const int row = blockIdx.x, h = blockIdx.y;
  const size_t base = (static_cast<size_t>(row) * p.n_head + h) * p.n_split;
  float M = kNegInf;
  for (int s = 0; s < p.n_split; ++s) M = fmaxf(M, p.part.m[base + s]);
  float L = 0.0f;
  for (int s = 0; s < p.n_split; ++s)
    if (p.part.m[base + s] != kNegInf) L += p.part.l[base + s] * expf(p.part.m[base + s] - M);
  const float inv_l = 1.0f / L;
  const HeadOverride ov = p.overrides ? static_cast<HeadOverride>(p.overrides[h]) : HeadOverride::none;
  const int64_t t = p.rows[row];
  if (p.write_out) {
    for (int d = threadIdx.x; d < p.hd; d += kThreads) {
      float o = 0.0f;
      if (ov == HeadOverride::mean) {
        o = p.head_means[h * p.hd + d];
      } else if (ov != HeadOverride::zero) {
        for (int s = 0; s < p.n_split; ++s)
          if (p.part.m[base + s] != kNegInf) o += p.part.acc[(base + s) * p.hd + d] * expf(p.part.m[base + s] - M);
        o *= inv_l;
      }
      p.out[(t * p.n_head + h) * p.hd + d] = o;
    }
  }
  if (p.probes && p.key_len > 0) {
    // Key j's weight: exp(s_j - m of its split) * exp(m of its split - M) / L; keys past the
    // row's position were never written (0), nor were splits past the last row's.
    float* w = p.key_w + (static_cast<size_t>(row) * p.n_head + h) * p.key_len;
    for (int64_t j = threadIdx.x; j < p.key_len; j += kThreads) {
      const int64_t s = j / kSplitKeys;
      const float ms = s < p.n_split ? p.part.m[base + s] : kNegInf;
      w[j] = ms == kNegInf ? 0.0f : w[j] * expf(ms - M) * inv_l;
    }
  }
  if (!p.probes || threadIdx.x != 0) return;
  const size_t oi = static_cast<size_t>(row) * p.n_head + h;
  int32_t arg = -1;
  float span = 0.0f, sink = 0.0f;
  for (int s = 0; s < p.n_split; ++s) {
    const float ms = p.part.m[base + s];
    if (ms == kNegInf) continue;
    if (arg < 0 && ms == M) arg = p.part.arg[base + s];
    span += p.part.span[base + s] * expf(ms - M);
    if (p.part.sink[base + s] != kNegInf) sink = expf(p.part.sink[base + s] - M) * inv_l;
  }
  p.out_arg[oi] = arg;
  p.out_arg_w[oi] = inv_l;  // the argmax scores M: weight exp(0) / L
  p.out_span[oi] = span * inv_l;
  p.out_sink[oi] = sink;
  if (p.top_k > 0) {
    // Merge the splits' candidates: best remaining (score, earliest position) each round.
    const int k = p.top_k;
    for (int r = 0; r < k; ++r) {
      float bs = kNegInf;
      int64_t bj = -1;
      for (int c = 0; c < p.n_split * k; ++c) {
        const int32_t j = p.part.tk_pos[base * k + c];
        if (j < 0 || p.part.m[base + c / k] == kNegInf) continue;
        const float s = p.part.tk_s[base * k + c];
        // Positions are unique among the candidates: one taken in an earlier round is skipped.
        if (better(s, j, bs, bj)) {
          bool taken = false;
          for (int q = 0; q < r; ++q)
            if (p.out_tk_pos[oi * k + q] == j) taken = true;
          if (!taken) {
            bs = s;
            bj = j;
          }
        }
      }
      p.out_tk_pos[oi * k + r] = static_cast<int32_t>(bj);
      p.out_tk_w[oi * k + r] = bj >= 0 ? expf(bs - M) * inv_l : 0.0f;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Flash prefill: grid (row tiles, n_kv_head), kThreads threads; DPL = dimensions per lane
// (head_dim <= 32 * DPL).
// The flash kernels take flash_prefill.cuh's arguments (one struct for every prefill kernel).
using FlashParams = FlashPrefillArgs;

// The query rows of one flash tile, in shared memory: row r is (token (r_begin + r) / group,
// head kvh * group + (r_begin + r) % group); t = -1 past the last row.
struct TileRows {
  int64_t t[kFlashRows];
  int h[kFlashRows];
  Visibility vis[kFlashRows];
  uint8_t ov[kFlashRows];
};

// Fills the tile's rows (every thread of the block takes part; synchronises at the end).
__device__ void load_tile_rows(TileRows& rows, const FlashParams& p, int group, int kvh, int64_t r_begin) {
  const int64_t n_rows_total = p.n_tokens * group;
  for (int r = threadIdx.x; r < kFlashRows; r += blockDim.x) {
    const int64_t R = r_begin + r;
    const bool valid = R < n_rows_total;
    const int64_t t = valid ? R / group : 0;
    const int h = kvh * group + static_cast<int>(valid ? R % group : 0);
    rows.t[r] = valid ? t : -1;
    rows.h[r] = h;
    rows.vis[r] = visibility(p.pos0 + t, p.window, p.head_window, p.head_sink, h);
    rows.ov[r] = p.overrides ? p.overrides[h] : 0;
  }
  __syncthreads();
}

// Keys the tile needs: from the smallest window start (windowed KV-policy heads keep their
// sink, so they start at 0) to the largest query position; key_hi = -1 for an empty tile.
__device__ void tile_key_range(const TileRows& rows, int64_t& key_lo, int64_t& key_hi) {
  key_lo = INT64_MAX, key_hi = -1;
  for (int r = 0; r < kFlashRows; ++r)
    if (rows.t[r] >= 0) {
      const int64_t lo = rows.vis[r].head_window > 0 && rows.vis[r].sink > 0 ? 0 : rows.vis[r].lo;
      key_lo = min(key_lo, lo);
      key_hi = max(key_hi, rows.vis[r].i);
    }
}

// The running state of a warp's 16 rows before the first key: output 0, max -inf, sum 0.
template <int DPL>
__device__ __forceinline__ void start_rows(float (&o)[16][DPL], float (&m)[16], float (&l)[16]) {
#pragma unroll
  for (int r = 0; r < 16; ++r) {
    m[r] = kNegInf;
    l[r] = 0.0f;
#pragma unroll
    for (int c = 0; c < DPL; ++c) o[r][c] = 0.0f;
  }
}

// The warp's 16 finished rows (from wr0 on): O divided by the row sum (l holds each lane's
// part of it), or the head override's output; dimension d = lane + 32 c.
template <int DPL>
__device__ __forceinline__ void write_tile_rows(const FlashParams& p, const TileRows& rows, int wr0, int lane,
                                                const float (&o)[16][DPL], const float (&l)[16]) {
  const int hd = p.head_dim;
#pragma unroll
  for (int r = 0; r < 16; ++r) {
    const int R = wr0 + r;
    const float lsum = warp_sum(l[r]);
    if (rows.t[R] < 0) continue;
    const HeadOverride ov = static_cast<HeadOverride>(rows.ov[R]);
    float* orow = p.out + (rows.t[R] * p.n_head + rows.h[R]) * hd;
#pragma unroll
    for (int c = 0; c < DPL; ++c) {
      const int d = lane + 32 * c;
      if (d >= hd) continue;
      float val = o[r][c] / lsum;
      if (ov == HeadOverride::zero) val = 0.0f;
      if (ov == HeadOverride::mean) val = p.head_means[rows.h[R] * hd + d];
      orow[d] = val;
    }
  }
}

template <typename KT, int DPL>
__global__ void __launch_bounds__(kThreads) attention_flash_kernel(FlashParams p) {
  extern __shared__ float smem[];
  const int hd = p.head_dim, group = p.n_head / p.n_kv_head;
  float* qs = smem;                        // [kFlashRows][hd]
  float* ks = qs + kFlashRows * hd;        // [kFlashKeys][hd + 1]
  float* vs = ks + kFlashKeys * (hd + 1);  // [kFlashKeys][hd]
  float* ps = vs + kFlashKeys * hd;        // [4 warps][16 rows][kFlashKeys]
  __shared__ TileRows rows;

  const int kvh = blockIdx.y;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const DeviceKvHead<const KT> kvs = device_kv_head<const KT>(p.k, p.v, p.head_stride, p.kv_heads, kvh);

  load_tile_rows(rows, p, group, kvh, static_cast<int64_t>(blockIdx.x) * kFlashRows);
  for (int idx = threadIdx.x; idx < kFlashRows * hd; idx += kThreads) {
    const int r = idx / hd, d = idx % hd;
    qs[idx] = rows.t[r] >= 0 ? p.q[(rows.t[r] * p.n_head + rows.h[r]) * hd + d] : 0.0f;
  }
  int64_t key_lo, key_hi;
  tile_key_range(rows, key_lo, key_hi);
  __syncthreads();

  const int wr0 = warp * 16;  // this warp's first row
  float o[16][DPL], m[16], l[16];
  start_rows(o, m, l);
  float* pw = ps + warp * 16 * kFlashKeys;

  for (int64_t kb0 = key_hi < 0 ? 0 : key_lo / kFlashKeys * kFlashKeys; kb0 <= key_hi; kb0 += kFlashKeys) {
    __syncthreads();  // the previous tile is no longer read
    for (int idx = threadIdx.x; idx < kFlashKeys * hd; idx += kThreads) {
      const int j = idx / hd, d = idx % hd;
      const int64_t pos = kb0 + j;
      const bool in = pos <= key_hi;
      ks[j * (hd + 1) + d] = in ? load_kv(kvs.k + kvs.row(pos) * hd + d) : 0.0f;
      vs[j * hd + d] = in ? load_kv(kvs.v + kvs.row(pos) * hd + d) : 0.0f;
    }
    __syncthreads();

    // Scores: lane = key kb0 + lane against the warp's 16 rows.
    float s[16];
#pragma unroll
    for (int r = 0; r < 16; ++r) s[r] = 0.0f;
    const float* krow = ks + lane * (hd + 1);
    for (int d = 0; d < hd; d += 4) {
      float k4[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) k4[e] = d + e < hd ? krow[d + e] : 0.0f;
#pragma unroll
      for (int r = 0; r < 16; ++r) {
        const float* qrow = qs + (wr0 + r) * hd + d;
        if (d + 3 < hd) {
          const float4 q4 = *reinterpret_cast<const float4*>(qrow);
          s[r] += q4.x * k4[0] + q4.y * k4[1] + q4.z * k4[2] + q4.w * k4[3];
        } else {
          for (int e = 0; d + e < hd; ++e) s[r] += qrow[e] * k4[e];
        }
      }
    }
    const int64_t j = kb0 + lane;
#pragma unroll
    for (int r = 0; r < 16; ++r) {
      const int R = wr0 + r;
      float sr = kNegInf;
      if (rows.t[R] >= 0 && rows.vis[R](j))
        sr = rows.ov[R] == static_cast<uint8_t>(HeadOverride::uniform) ? 0.0f
                                                                       : transform_score(s[r], p.scale, p.softcap);
      const float tile_max = warp_max(sr);
      const float m_new = fmaxf(m[r], tile_max);
      float alpha = 1.0f, w = 0.0f;
      if (m_new != kNegInf) {
        alpha = m[r] == kNegInf ? 0.0f : expf(m[r] - m_new);
        w = sr == kNegInf ? 0.0f : expf(sr - m_new);
      }
      m[r] = m_new;
      l[r] = l[r] * alpha + w;  // this lane's share of the row sum
      pw[r * kFlashKeys + lane] = w;
#pragma unroll
      for (int c = 0; c < DPL; ++c) o[r][c] *= alpha;
    }
    __syncwarp();
    // o[r][d] += sum_j w[r][j] * v_j[d], d = lane + 32 c.
    for (int jj = 0; jj < kFlashKeys; jj += 4) {
      float v4[4][DPL];
#pragma unroll
      for (int e = 0; e < 4; ++e)
#pragma unroll
        for (int c = 0; c < DPL; ++c) {
          const int d = lane + 32 * c;
          v4[e][c] = d < hd ? vs[(jj + e) * hd + d] : 0.0f;
        }
#pragma unroll
      for (int r = 0; r < 16; ++r) {
        const float4 w4 = *reinterpret_cast<const float4*>(pw + r * kFlashKeys + jj);
#pragma unroll
        for (int c = 0; c < DPL; ++c) o[r][c] += w4.x * v4[0][c] + w4.y * v4[1][c] + w4.z * v4[2][c] + w4.w * v4[3][c];
      }
    }
    __syncwarp();
  }

  write_tile_rows<DPL>(p, rows, wr0, lane, o, l);
}

template <typename KT, int DPL>
void launch_flash(const FlashParams& fp, int64_t n_row_tiles, int n_kv_head, cudaStream_t stream) {
  const size_t smem = (static_cast<size_t>(kFlashRows) * fp.head_dim + kFlashKeys * (fp.head_dim + 1) +
                       kFlashKeys * fp.head_dim + 4 * 16 * kFlashKeys) *
                      sizeof(float);
  static bool configured = false;  // opt in to more than 48 KiB of shared memory once
  if (!configured) {
    RHEAD_CUDA_CHECK(
        cudaFuncSetAttribute(attention_flash_kernel<KT, DPL>, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024));
    configured = true;
  }
  attention_flash_kernel<KT, DPL><<<dim3(static_cast<unsigned>(n_row_tiles), n_kv_head), kThreads, smem, stream>>>(fp);
  RHEAD_CUDA_LAUNCHED("attention_flash_kernel");
}

template <typename KT>
void launch_flash_for_dim(const FlashParams& fp, int64_t tiles, int n_kv, cudaStream_t st) {
  if (fp.head_dim <= 32)
    launch_flash<KT, 1>(fp, tiles, n_kv, st);
  else if (fp.head_dim <= 64)
    launch_flash<KT, 2>(fp, tiles, n_kv, st);
  else if (fp.head_dim <= 128)
    launch_flash<KT, 4>(fp, tiles, n_kv, st);
  else
    launch_flash<KT, 8>(fp, tiles, n_kv, st);
}

// ---------------------------------------------------------------------------------------
// Flash prefill on the tensor cores (f16 cache, head_dim 64 or 128): the same tiling as the
// kernel above (64 query rows of one GQA group per block, 16 per warp), with S = Q K^T and
// P V as WMMA f16 products with f32 accumulation. Q and P are rounded to f16 (about 1e-3
// relative); the softmax, the masks and the running output stay in f32. Selected with
// RHEAD_CUDA_FLASH=tc until it has been measured against the f32 kernel.
constexpr int kTcKeys = 64;  // keys per tile

template <int HD>
struct TcLayout {
  static constexpr int ld = HD + 8;                       // halves per row of Q, K, V (padding)
  static constexpr int q = 0;                             // [64][ld] half
  static constexpr int k = q + kFlashRows * ld * 2;       // [64][ld] half
  static constexpr int v = k + kTcKeys * ld * 2;          // [64][ld] half
  static constexpr int p = v + kTcKeys * ld * 2;          // [64][kTcKeys] half
  static constexpr int s = p + kFlashRows * kTcKeys * 2;  // per warp [16][max(kTcKeys, HD)] float
  static constexpr int s_ld = HD > kTcKeys ? HD : kTcKeys;
  static constexpr int bytes = s + 4 * 16 * s_ld * 4;
};

// C[16][N] = A[16][K] . B[K][N] on the tensor cores (f16 in, f32 out, row-major A and C).
// Block (kk, nb) of B starts at b + nb * b_n_step + kk * b_k_step; BLayout is col_major when
// B is stored as rows of B^T (the keys of Q K^T), row_major otherwise.
template <int N, int K, typename BLayout>
__device__ __forceinline__ void wmma_16xn(const __half* a, int lda, const __half* b, int ldb, int b_n_step,
                                          int b_k_step, float* c, int ldc) {
  using namespace nvcuda;
#pragma unroll
  for (int nb = 0; nb < N / 16; ++nb) {
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.0f);
#pragma unroll
    for (int kk = 0; kk < K / 16; ++kk) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, BLayout> fb;
      wmma::load_matrix_sync(fa, a + kk * 16, lda);
      wmma::load_matrix_sync(fb, b + nb * b_n_step + kk * b_k_step, ldb);
      wmma::mma_sync(acc, fa, fb, acc);
    }
    wmma::store_matrix_sync(c + nb * 16, acc, ldc, wmma::mem_row_major);
  }
}

template <int HD>
__global__ void __launch_bounds__(kThreads) attention_flash_tc_kernel(FlashParams p) {
  using namespace nvcuda;
  using L = TcLayout<HD>;
  extern __shared__ __align__(128) unsigned char tc_smem[];
  __half* qs = reinterpret_cast<__half*>(tc_smem + L::q);
  __half* ks = reinterpret_cast<__half*>(tc_smem + L::k);
  __half* vs = reinterpret_cast<__half*>(tc_smem + L::v);
  __half* ps = reinterpret_cast<__half*>(tc_smem + L::p);
  __shared__ TileRows rows;

  const int kvh = blockIdx.y;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* sw = reinterpret_cast<float*>(tc_smem + L::s) + warp * 16 * L::s_ld;  // this warp's S, then PV
  const DeviceKvHead<const __half> kvs = device_kv_head<const __half>(p.k, p.v, p.head_stride, p.kv_heads, kvh);

  load_tile_rows(rows, p, p.n_head / p.n_kv_head, kvh, static_cast<int64_t>(blockIdx.x) * kFlashRows);
  for (int idx = threadIdx.x; idx < kFlashRows * HD; idx += kThreads) {
    const int r = idx / HD, d = idx % HD;
    qs[r * L::ld + d] = __float2half_rn(rows.t[r] >= 0 ? p.q[(rows.t[r] * p.n_head + rows.h[r]) * HD + d] : 0.0f);
  }
  int64_t key_lo, key_hi;
  tile_key_range(rows, key_lo, key_hi);

  constexpr int DPL = HD / 32;
  const int wr0 = warp * 16;
  float o[16][DPL], m[16], l[16];
  start_rows(o, m, l);
  __half* pw = ps + wr0 * kTcKeys;

  for (int64_t kb0 = key_hi < 0 ? 0 : key_lo / kTcKeys * kTcKeys; kb0 <= key_hi; kb0 += kTcKeys) {
    __syncthreads();  // the previous tile (and Q on the first pass) is settled
    // K and V tiles: 8 halves (16 bytes) per copy.
    for (int idx = threadIdx.x; idx < kTcKeys * (HD / 8); idx += kThreads) {
      const int j = idx / (HD / 8), d = (idx % (HD / 8)) * 8;
      const int64_t pos = kb0 + j;
      uint4 kv = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0);
      if (pos <= key_hi) {
        kv = *reinterpret_cast<const uint4*>(kvs.k + kvs.row(pos) * HD + d);
        vv = *reinterpret_cast<const uint4*>(kvs.v + kvs.row(pos) * HD + d);
      }
      *reinterpret_cast<uint4*>(ks + j * L::ld + d) = kv;
      *reinterpret_cast<uint4*>(vs + j * L::ld + d) = vv;
    }
    __syncthreads();

    // S[16][64] = Q[16][HD] . K^T
    wmma_16xn<kTcKeys, HD, wmma::col_major>(qs + wr0 * L::ld, L::ld, ks, L::ld, 16 * L::ld, 16, sw, L::s_ld);
    __syncwarp();

    // Online softmax on the warp's 16 rows; lane holds keys lane and lane + 32.
    float alpha[16];
#pragma unroll
    for (int r = 0; r < 16; ++r) {
      const int R = wr0 + r;
      float s2[2];
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int64_t j = kb0 + lane + 32 * e;
        float sr = kNegInf;
        if (rows.t[R] >= 0 && j <= key_hi && rows.vis[R](j))
          sr = rows.ov[R] == static_cast<uint8_t>(HeadOverride::uniform)
                   ? 0.0f
                   : transform_score(sw[r * L::s_ld + lane + 32 * e], p.scale, p.softcap);
        s2[e] = sr;
      }
      const float tile_max = warp_max(fmaxf(s2[0], s2[1]));
      const float m_new = fmaxf(m[r], tile_max);
      float a = 1.0f, w0 = 0.0f, w1 = 0.0f;
      if (m_new != kNegInf) {
        a = m[r] == kNegInf ? 0.0f : expf(m[r] - m_new);
        w0 = s2[0] == kNegInf ? 0.0f : expf(s2[0] - m_new);
        w1 = s2[1] == kNegInf ? 0.0f : expf(s2[1] - m_new);
      }
      m[r] = m_new;
      const __half h0 = __float2half_rn(w0), h1 = __float2half_rn(w1);
      // The row sum adds the weights as the product will use them (rounded to f16).
      l[r] = l[r] * a + __half2float(h0) + __half2float(h1);
      pw[r * kTcKeys + lane] = h0;
      pw[r * kTcKeys + lane + 32] = h1;
      alpha[r] = a;
    }
    __syncwarp();

    // PV[16][HD] = P[16][64] . V[64][HD], into the warp's S buffer (S is no longer needed).
    wmma_16xn<HD, kTcKeys, wmma::row_major>(pw, kTcKeys, vs, L::ld, 16, 16 * L::ld, sw, L::s_ld);
    __syncwarp();
#pragma unroll
    for (int r = 0; r < 16; ++r)
#pragma unroll
      for (int c = 0; c < DPL; ++c) o[r][c] = o[r][c] * alpha[r] + sw[r * L::s_ld + lane + 32 * c];
    __syncwarp();
  }

  write_tile_rows<DPL>(p, rows, wr0, lane, o, l);
}

template <int HD>
void launch_flash_tc(const FlashParams& fp, int64_t n_row_tiles, int n_kv_head, cudaStream_t stream) {
  static bool configured = false;
  if (!configured) {
    RHEAD_CUDA_CHECK(cudaFuncSetAttribute(attention_flash_tc_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          TcLayout<HD>::bytes));
    configured = true;
  }
  attention_flash_tc_kernel<HD>
      <<<dim3(static_cast<unsigned>(n_row_tiles), n_kv_head), kThreads, TcLayout<HD>::bytes, stream>>>(fp);
  RHEAD_CUDA_LAUNCHED("attention_flash_tc_kernel");
}

// RHEAD_CUDA_FLASH=tc selects the tensor-core prefill kernel where it applies.
bool tensor_core_flash_requested() {
  const char* v = std::getenv("RHEAD_CUDA_FLASH");
  return v && std::string(v) == "tc";
}

}  // namespace

void AttentionScratch::release() {
  for (Scratch* s : {&rows,     &overrides, &head_window, &head_means,  &part_m,    &part_l,  &part_acc,
                     &part_arg, &part_span, &part_sink,   &part_tk_pos, &part_tk_s, &out_arg, &out_arg_w,
                     &out_span, &out_sink,  &out_tk_pos,  &out_tk_w,    &key_w,     &kv_heads})
    s->release();
}

namespace {

// The per-head inputs on the device and the resolved scale, shared by every kernel of a call.
struct DeviceHeads {
  const uint8_t* overrides;
  const int32_t* head_window;
  const float* head_means;
  float scale;
  const KvHeadRows* kv_heads;  // compacted cache, else nullptr
};

// The call's geometry, as every attention kernel reads it.
FlashPrefillArgs call_args(const AttentionArgs& a, const DeviceHeads& dh) {
  return {.q = a.q,
          .k = a.k,
          .v = a.v,
          .head_stride = a.kv_head_stride,
          .out = a.out,
          .n_tokens = a.n_tokens,
          .pos0 = a.pos0,
          .n_head = a.n_head,
          .n_kv_head = a.n_kv_head,
          .head_dim = a.head_dim,
          .window = a.window,
          .head_window = dh.head_window,
          .head_sink = a.head_sink,
          .overrides = dh.overrides,
          .head_means = dh.head_means,
          .scale = dh.scale,
          .softcap = a.softcap,
          .kv_heads = dh.kv_heads};
}

// Prefill outputs of every row with a flash kernel: the register kernel where it serves,
// else the tensor-core or the f32 one.
void run_flash(const AttentionArgs& a, const DeviceHeads& dh, cudaStream_t stream) {
  const int hd = a.head_dim, group = a.n_head / a.n_kv_head;
  const int64_t T = a.n_tokens;
  const FlashParams fp = call_args(a, dh);
  const int64_t tiles = (T * group + kFlashRows - 1) / kFlashRows;
  if (flash_prefill_selected(hd, a.kv_f16)) {
    // Default on sm_80+: register-resident tensor-core kernel (flash_prefill.cu).
    flash_prefill(fp, stream);
  } else if (a.kv_f16 && (hd == 64 || hd == 128) && tensor_core_flash_requested()) {
    if (hd == 64)
      launch_flash_tc<64>(fp, tiles, a.n_kv_head, stream);
    else
      launch_flash_tc<128>(fp, tiles, a.n_kv_head, stream);
  } else if (a.kv_f16) {
    launch_flash_for_dim<__half>(fp, tiles, a.n_kv_head, stream);
  } else {
    launch_flash_for_dim<float>(fp, tiles, a.n_kv_head, stream);
  }
}

// The split-key row kernel and its combine over `rows` (outputs unless a flash kernel wrote
// them, and the probes); returns the combine's arguments, whose out_* hold the probes.
CombineParams run_rows(const AttentionArgs& a, AttentionScratch& sc, const DeviceHeads& dh,
                       const std::vector<int32_t>& rows, bool flash, bool want_probes, int top_k, cudaStream_t stream) {
  const int hd = a.head_dim, group = a.n_head / a.n_kv_head;
  const AttentionProbeOut& pr = a.probes;
  const int n_rows = static_cast<int>(rows.size());
  int64_t max_pos = 0;
  for (int32_t t : rows) max_pos = std::max<int64_t>(max_pos, a.pos0 + t);
  const int n_split = static_cast<int>((max_pos + 1 + kSplitKeys - 1) / kSplitKeys);
  const size_t n_part = static_cast<size_t>(n_rows) * a.n_head * n_split;
  int lanes_per_key = 1;
  while (lanes_per_key * 8 < hd) lanes_per_key *= 2;
  const int top_k_slots = std::max(1, top_k);
  RowParams rp;
  static_cast<FlashPrefillArgs&>(rp) = call_args(a, dh);
  rp.rows = upload(sc.rows, rows.data(), rows.size(), stream);
  rp.group = group;
  rp.n_head_chunks = (group + kMaxGroup - 1) / kMaxGroup;
  rp.lanes_per_key = lanes_per_key;
  rp.n_split = n_split;
  rp.probes = want_probes;
  rp.top_k = top_k;
  rp.span_begin = pr.span_mass ? pr.span_begin : 0;
  rp.span_end = pr.span_mass ? pr.span_end : 0;
  if (want_probes && pr.key_weights) {
    rp.key_len = pr.key_weights_len;
    const size_t n_w = static_cast<size_t>(n_rows) * a.n_head * rp.key_len;
    rp.key_w = sc.key_w.get<float>(n_w);
    RHEAD_CUDA_CHECK(cudaMemsetAsync(rp.key_w, 0, n_w * sizeof(float), stream));
  }
  rp.part = {.m = sc.part_m.get<float>(n_part),
             .l = sc.part_l.get<float>(n_part),
             .acc = sc.part_acc.get<float>(n_part * hd),
             .arg = sc.part_arg.get<int32_t>(n_part),
             .span = sc.part_span.get<float>(n_part),
             .sink = sc.part_sink.get<float>(n_part),
             .tk_pos = sc.part_tk_pos.get<int32_t>(n_part * top_k_slots),
             .tk_s = sc.part_tk_s.get<float>(n_part * top_k_slots)};
  const int jparts = hd >= kThreads ? 1 : kThreads / hd;
  const size_t smem =
      (static_cast<size_t>(kMaxGroup) * kSplitKeys + static_cast<size_t>(jparts) * kMaxGroup * hd) * sizeof(float);
  static bool configured = false;
  if (!configured) {
    RHEAD_CUDA_CHECK(
        cudaFuncSetAttribute(attention_rows_kernel<__half>, cudaFuncAttributeMaxDynamicSharedMemorySize, 96 * 1024));
    RHEAD_CUDA_CHECK(
        cudaFuncSetAttribute(attention_rows_kernel<float>, cudaFuncAttributeMaxDynamicSharedMemorySize, 96 * 1024));
    configured = true;
  }
  const dim3 grid(n_split, a.n_kv_head * rp.n_head_chunks, n_rows);
  if (a.kv_f16)
    attention_rows_kernel<__half><<<grid, kThreads, smem, stream>>>(rp);
  else
    attention_rows_kernel<float><<<grid, kThreads, smem, stream>>>(rp);
  RHEAD_CUDA_LAUNCHED("attention_rows_kernel");

  const size_t n_out = static_cast<size_t>(n_rows) * a.n_head;
  const CombineParams cp{.n_head = a.n_head,
                         .hd = hd,
                         .n_split = n_split,
                         .top_k = top_k,
                         .write_out = !flash,
                         .probes = want_probes,
                         .rows = rp.rows,
                         .overrides = dh.overrides,
                         .head_means = dh.head_means,
                         .part = rp.part,
                         .out = a.out,
                         .out_arg = sc.out_arg.get<int32_t>(n_out),
                         .out_arg_w = sc.out_arg_w.get<float>(n_out),
                         .out_span = sc.out_span.get<float>(n_out),
                         .out_sink = sc.out_sink.get<float>(n_out),
                         .out_tk_pos = sc.out_tk_pos.get<int32_t>(n_out * top_k_slots),
                         .out_tk_w = sc.out_tk_w.get<float>(n_out * top_k_slots),
                         .key_w = rp.key_w,
                         .key_len = rp.key_len};
  attention_combine_kernel<<<dim3(n_rows, a.n_head), kThreads, 0, stream>>>(cp);
  RHEAD_CUDA_LAUNCHED("attention_combine_kernel");
  return cp;
}

// Brings the observed rows' probes back and places them in the caller's record.
void copy_probes_back(const AttentionArgs& a, const CombineParams& cp, const std::vector<int32_t>& rows, int top_k,
                      cudaStream_t stream) {
  const AttentionProbeOut& pr = a.probes;
  const int n_rows = static_cast<int>(rows.size());
  const size_t n_out = static_cast<size_t>(n_rows) * a.n_head;
  std::vector<int32_t> arg(n_out), tk_pos(n_out * std::max(1, top_k));
  std::vector<float> arg_w(n_out), span(n_out), sink(n_out), tk_w(n_out * std::max(1, top_k));
  RHEAD_CUDA_CHECK(cudaMemcpyAsync(arg.data(), cp.out_arg, n_out * 4, cudaMemcpyDeviceToHost, stream));
  RHEAD_CUDA_CHECK(cudaMemcpyAsync(arg_w.data(), cp.out_arg_w, n_out * 4, cudaMemcpyDeviceToHost, stream));
  RHEAD_CUDA_CHECK(cudaMemcpyAsync(span.data(), cp.out_span, n_out * 4, cudaMemcpyDeviceToHost, stream));
  RHEAD_CUDA_CHECK(cudaMemcpyAsync(sink.data(), cp.out_sink, n_out * 4, cudaMemcpyDeviceToHost, stream));
  if (top_k > 0) {
    RHEAD_CUDA_CHECK(cudaMemcpyAsync(tk_pos.data(), cp.out_tk_pos, n_out * top_k * 4, cudaMemcpyDeviceToHost, stream));
    RHEAD_CUDA_CHECK(cudaMemcpyAsync(tk_w.data(), cp.out_tk_w, n_out * top_k * 4, cudaMemcpyDeviceToHost, stream));
  }
  std::vector<float> key_w(cp.key_w ? n_out * cp.key_len : 0);
  if (cp.key_w)
    RHEAD_CUDA_CHECK(
        cudaMemcpyAsync(key_w.data(), cp.key_w, key_w.size() * sizeof(float), cudaMemcpyDeviceToHost, stream));
  RHEAD_CUDA_CHECK(cudaStreamSynchronize(stream));
  for (int r = 0; r < n_rows; ++r) {
    const int32_t slot = a.obs_slot[rows[r]];
    if (slot < 0) continue;
    for (int h = 0; h < a.n_head; ++h) {
      const size_t src = static_cast<size_t>(r) * a.n_head + h;
      const int64_t idx = slot * pr.obs_stride + h;
      if (pr.argmax) pr.argmax[idx] = arg[src];
      if (pr.argmax_weight) pr.argmax_weight[idx] = arg_w[src];
      if (pr.span_mass) pr.span_mass[idx] = span[src];
      if (pr.sink_mass) pr.sink_mass[idx] = sink[src];
      for (int i = 0; i < top_k; ++i) {
        pr.topk[idx * top_k + i] = tk_pos[src * top_k + i];
        pr.topk_weight[idx * top_k + i] = tk_w[src * top_k + i];
      }
      if (cp.key_w)
        std::copy_n(key_w.data() + src * cp.key_len, cp.key_len,
                    pr.key_weights + (slot * pr.key_weights_stride + h) * pr.key_weights_len);
    }
  }
}

// Calibration: adds every token's head outputs on the host (double sums, as the CPU does).
void add_head_outputs(const AttentionArgs& a, cudaStream_t stream) {
  const int hd = a.head_dim;
  const int64_t T = a.n_tokens;
  std::vector<float> out(static_cast<size_t>(T) * a.n_head * hd);
  RHEAD_CUDA_CHECK(cudaMemcpyAsync(out.data(), a.out, out.size() * 4, cudaMemcpyDeviceToHost, stream));
  RHEAD_CUDA_CHECK(cudaStreamSynchronize(stream));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < static_cast<int64_t>(a.n_head) * hd; ++i) a.head_out_sum[i] += out[t * a.n_head * hd + i];
}

}  // namespace

void attention(const AttentionArgs& a, AttentionScratch& sc, cudaStream_t stream) {
  const int hd = a.head_dim;
  if (hd % 8 != 0 || hd > 256)
    throw Error("CUDA attention needs head_dim a multiple of 8 up to 256, not " + std::to_string(hd));
  if (a.n_kv_head <= 0 || a.n_head % a.n_kv_head != 0)
    throw Error("CUDA attention: n_head must be a multiple of n_kv_head");
  const int64_t T = a.n_tokens;
  const AttentionProbeOut& pr = a.probes;
  const bool want_probes = a.obs_slot && (pr.argmax || pr.argmax_weight || pr.sink_mass || pr.span_mass ||
                                          (pr.top_k > 0 && pr.topk) || (pr.key_weights && pr.key_weights_len > 0));
  const int top_k = want_probes && pr.topk ? pr.top_k : 0;
  if (top_k > kMaxTopK) throw Error("CUDA attention: top-k probes are limited to " + std::to_string(kMaxTopK));

  DeviceHeads dh;
  dh.overrides =
      upload(sc.overrides, reinterpret_cast<const uint8_t*>(a.overrides), a.overrides ? a.n_head : 0, stream);
  dh.head_window = upload(sc.head_window, a.head_window, a.head_window ? a.n_head : 0, stream);
  dh.head_means = upload(sc.head_means, a.head_means, a.head_means ? static_cast<size_t>(a.n_head) * hd : 0, stream);
  dh.scale = a.scale != 0.0f ? a.scale : 1.0f / std::sqrt(static_cast<float>(hd));
  dh.kv_heads = upload(sc.kv_heads, a.kv_heads, a.kv_heads ? a.n_kv_head : 0, stream);

  const bool flash = T > kRowModeMaxTokens;
  if (flash) run_flash(a, dh, stream);
  // Rows for the row kernel: every token (decode), or the observed tokens (prefill probes).
  std::vector<int32_t> rows;
  for (int64_t t = 0; t < T; ++t)
    if (!flash || (want_probes && a.obs_slot[t] >= 0)) rows.push_back(static_cast<int32_t>(t));
  if (!rows.empty()) {
    const CombineParams cp = run_rows(a, sc, dh, rows, flash, want_probes, top_k, stream);
    if (want_probes) copy_probes_back(a, cp, rows, top_k, stream);
  }
  if (a.head_out_sum) add_head_outputs(a, stream);
}

}  // namespace rhead::cuda

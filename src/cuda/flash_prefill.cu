// Causal prefill attention with register-resident online softmax (FlashAttention-2 style),
// f16 tensor-core products through mma.sync m16n8k16 with f32 accumulation.
//
// Grid (row tiles, n_kv_head). A block owns W * R query rows of one GQA group, row r = (token
// r / group, head kv_head * group + r % group), so the query heads of a group share every K/V
// tile; each of its W warps owns R consecutive rows (MT = R / 16 m-tiles). Block shapes W x R:
// 8x16 (default: one block of 8 warps per SM for head_dim 128), 4x16 and 4x32 (two blocks per
// SM); RHEAD_CUDA_FLASH_SHAPE selects one, for measurements. Per key tile of kKeys positions
// (64; 32 for 4x32 at head_dim 128, where 64 would spill), K and V double-buffered in shared
// memory through cp.async (the next tile loads while this one is computed):
//   S[R][kKeys] = Q K^T       Q: f16 A fragments, scale folded in, held in registers for the
//                             whole kernel (MT = 1) or staged in shared memory and read by
//                             ldmatrix (MT = 2); K: B fragments by ldmatrix
//   soft-cap, masks, running max / sum and the rescale of O on the S fragments (a row lives
//   in the 4 lanes of a quad: quad shuffles reduce it)
//   O[R][HD] += P V           P: the S fragments rounded to f16 A fragments in registers,
//                             V: B fragments by ldmatrix.trans
// Fragment layouts (m16n8k16, g = lane / 4, c = lane % 4):
//   A 16x16 row-major, 4 regs of half2: {row g, cols 2c..2c+1}, {row g+8, cols 2c..},
//     {row g, cols 2c+8..}, {row g+8, cols 2c+8..}
//   B 16x8 (k x n), 2 regs: {k 2c..2c+1, n g}, {k 2c+8..2c+9, n g}
//   C 16x8 f32, 4 floats: {row g, cols 2c, 2c+1}, {row g+8, cols 2c, 2c+1}
// so the C fragments of key blocks 2k and 2k+1 are, once rounded, the A fragment of key
// chunk k of P V.
//
// Tiles no row of the block sees are never loaded (causal: past the block's last position;
// windows: before the block's earliest visible key); a warp skips the products of a tile none
// of its rows sees, and evaluates the masks only on tiles that cross its diagonal or when
// windows or a uniform override are present. Invisible scores are -inf; a row whose running
// max is still -inf uses 0 as its reference so that exp2 gives 0, never NaN.
#include "cuda/flash_prefill.cuh"

#include <cuda_fp16.h>

#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cuda/cuda_common.cuh"
#include "ops/attention.h"
#include "ops/kv_visibility.h"

namespace rhead::cuda {
namespace {

// Keys per tile: 64, or 32 where a warp's 32 rows of head_dim 128 would not fit in registers.
template <int HD, int MT>
constexpr int kKeysFor = HD* MT > 128 ? 32 : 64;
constexpr float kLog2e = 1.4426950408889634f;

// Dynamic shared memory: 2 stages x (K, V) tiles, then (MT > 1) the block's Q rows.
template <int HD, int kWarps, int MT>
struct PrefillLayout {
  static constexpr int kKeys = kKeysFor<HD, MT>;
  static constexpr int ld = HD + 8;                  // halves per row (16-byte pad: ldmatrix without bank conflicts)
  static constexpr int tile = kKeys * ld;            // halves per K or V tile
  static constexpr int q_offset = 2 * 2 * tile * 2;  // bytes
  static constexpr int q_rows = MT > 1 ? kWarps * 16 * MT : 0;
  static constexpr int bytes = q_offset + q_rows * ld * 2;
};

struct PrefillParams {
  const float* q;
  const __half* k;
  const __half* v;
  int64_t head_stride;
  const KvHeadRows* kv_heads;  // compacted cache (device copy), else nullptr
  float* out;
  int n_tokens, pos0, n_head, group;
  int window, head_sink;
  const int32_t* head_window;
  const uint8_t* overrides;
  const float* head_means;
  float scale, softcap;
};

__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);  // lo in the low 16 bits: the lower column
  uint32_t u;
  memcpy(&u, &h, 4);
  return u;
}

// D = A B + D, f16 inputs, f32 accumulators.
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Sets every register of an [MT][blocks][4] accumulator array (unrolled: it stays in registers).
template <int MT, int NB>
__device__ __forceinline__ void fill_fragments(float (&x)[MT][NB][4], float v) {
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nb = 0; nb < NB; ++nb)
#pragma unroll
      for (int e = 0; e < 4; ++e) x[mt][nb][e] = v;
}

// The two 16x8 products of one ldmatrix_x4 B fragment: d0 += A . (b0, b1), d1 += A . (b2, b3).
__device__ __forceinline__ void mma_16816_pair(float (&d0)[4], float (&d1)[4], const uint32_t (&a)[4],
                                               const uint32_t (&b)[4]) {
  mma_16816(d0, a, b[0], b[1]);
  mma_16816(d1, a, b[2], b[3]);
}

// Four 8x8 f16 matrices; lanes 8m..8m+7 give the row addresses of matrix m.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// acc[mt][2n], acc[mt][2n + 1] += a[mt] times the n-th 16x16 B block, n < NB, for each of the
// warp's MT row blocks; B block n is read by ldmatrix (K^T from K rows) or ldmatrix.trans (V)
// at b_addr + n * b_step bytes.
template <int MT, int NB, bool kTrans>
__device__ __forceinline__ void mma_blocks(float (&acc)[MT][2 * NB][4], const uint32_t (&a)[MT][4], uint32_t b_addr,
                                           uint32_t b_step) {
#pragma unroll
  for (int n = 0; n < NB; ++n) {
    uint32_t b[4];
    if constexpr (kTrans)
      ldmatrix_x4_trans(b, b_addr + n * b_step);
    else
      ldmatrix_x4(b, b_addr + n * b_step);
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) mma_16816_pair(acc[mt][2 * n], acc[mt][2 * n + 1], a[mt], b);
  }
}

// 16 bytes global -> shared; src_bytes 0 writes zeros (src must still be a valid address).
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }

// 2^x on the special-function unit (flush-to-zero; exp2(-inf) = 0).
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}
__device__ __forceinline__ int warp_min(int x) {
  for (int off = 16; off > 0; off >>= 1) x = min(x, __shfl_xor_sync(0xffffffffu, x, off));
  return x;
}
__device__ __forceinline__ int warp_max(int x) {
  for (int off = 16; off > 0; off >>= 1) x = max(x, __shfl_xor_sync(0xffffffffu, x, off));
  return x;
}

// Row R of a block's GQA group: token R / group, query head kv_head * group + R % group. Rows
// past the end (valid false) take the last row's place.
struct RowPlace {
  bool valid;
  int t, h;
  template <int HD>
  __device__ int64_t offset(const PrefillParams& p) const {  // of the row in q and out
    return (static_cast<int64_t>(t) * p.n_head + h) * HD;
  }
};

__device__ __forceinline__ RowPlace row_place(const PrefillParams& p, int kvh, int n_rows_total, int R) {
  const int Rc = min(R, n_rows_total - 1);
  return {R < n_rows_total, Rc / p.group, kvh * p.group + Rc % p.group};
}

// One function on purpose: Q fragments, S, O and the row statistics live in registers across
// the whole key loop, which helper calls taking them by reference would not change but would hide.
template <int HD, int kWarps, int MT>
__global__ void __launch_bounds__(kWarps * 32) flash_prefill_kernel(PrefillParams p) {
  using L = PrefillLayout<HD, kWarps, MT>;
  constexpr int kThreads = kWarps * 32;
  constexpr int kChunks = HD / 8;  // 16-byte chunks per K/V row
  constexpr int kRows = 16 * MT;   // query rows per warp
  constexpr int kKeys = L::kKeys;
  extern __shared__ __align__(128) unsigned char prefill_smem[];
  __shared__ int warp_lo[kWarps], warp_hi[kWarps];
  __shared__ int4 row_info[kWarps * kRows];  // per row: position, model-window start, head window, uniform

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane >> 2, c = lane & 3;
  const int kvh = blockIdx.y;
  const int n_rows_total = p.n_tokens * p.group;
  // The last row tiles see the most keys: start them first.
  const int row_tile = gridDim.x - 1 - blockIdx.x;
  const int warp_row0 = row_tile * (kWarps * kRows) + warp * kRows;

  // This thread's rows: warp_row0 + 16 mt + g (half 0) and + 8 (half 1) of each m-tile mt.
  // Rows past the end borrow the last row's position (their keys exist) and are not written.
  // What the masks need waits in shared memory (row_info); the epilogue recomputes the rest.
  int first_pos = INT_MAX, last_pos = -1, lo_key = INT_MAX;
  bool special = p.window > 0;  // windows or a uniform override: every tile takes the masks
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      const RowPlace rp = row_place(p, kvh, n_rows_total, warp_row0 + 16 * mt + g + 8 * hf);
      const int i = p.pos0 + rp.t;
      const int wlo = kv_window_start<int>(i, p.window);
      const int hw = p.head_window ? p.head_window[rp.h] : 0;
      const bool uniform = p.overrides && p.overrides[rp.h] == static_cast<uint8_t>(HeadOverride::uniform);
      if (c == 0) row_info[warp * kRows + 16 * mt + g + 8 * hf] = make_int4(i, wlo, hw, uniform);
      // Earliest visible key: the window start, or for a KV-policy window whose sink lies
      // before the model window, the start of the policy window.
      lo_key = min(lo_key, hw > 0 && p.head_sink <= wlo ? max(wlo, i - hw + 1) : wlo);
      first_pos = min(first_pos, i);
      last_pos = max(last_pos, i);
      special = special || hw > 0 || uniform;
    }
  const int warp_first_pos = warp_min(first_pos);
  const int warp_last_pos = warp_max(last_pos);
  const int warp_lo_key = warp_min(lo_key);
  const bool always_mask = __any_sync(0xffffffffu, special);
  if (lane == 0) {
    warp_lo[warp] = warp_lo_key;
    warp_hi[warp] = warp_last_pos;
  }

  // Q, scaled, f16: A fragments in registers for one m-tile per warp; for more, staged in
  // shared memory (the warp's own rows) and read by ldmatrix at each key tile.
  const uint32_t smem = static_cast<uint32_t>(__cvta_generic_to_shared(prefill_smem));
  const int m = lane >> 3, mr = lane & 7;
  uint32_t qf[MT == 1 ? HD / 16 : 1][4];
  if constexpr (MT == 1) {
#pragma unroll
    for (int kk = 0; kk < HD / 16; ++kk)
#pragma unroll
      for (int hf = 0; hf < 2; ++hf) {
        const RowPlace rp = row_place(p, kvh, n_rows_total, warp_row0 + g + 8 * hf);
        float2 a = make_float2(0.0f, 0.0f), b = make_float2(0.0f, 0.0f);
        if (rp.valid) {
          const float* qrow = p.q + rp.offset<HD>(p) + kk * 16 + 2 * c;
          a = *reinterpret_cast<const float2*>(qrow);
          b = *reinterpret_cast<const float2*>(qrow + 8);
        }
        qf[kk][hf] = pack_half2(a.x * p.scale, a.y * p.scale);
        qf[kk][2 + hf] = pack_half2(b.x * p.scale, b.y * p.scale);
      }
  } else {
    __half* qs = reinterpret_cast<__half*>(prefill_smem + L::q_offset) + warp * kRows * L::ld;
    for (int idx = lane; idx < kRows * (HD / 2); idx += 32) {
      const int r = idx / (HD / 2), d = (idx % (HD / 2)) * 2;
      const RowPlace rp = row_place(p, kvh, n_rows_total, warp_row0 + r);
      float2 v = make_float2(0.0f, 0.0f);
      if (rp.valid) v = *reinterpret_cast<const float2*>(p.q + rp.offset<HD>(p) + d);
      *reinterpret_cast<__half2*>(qs + r * L::ld + d) = __floats2half2_rn(v.x * p.scale, v.y * p.scale);
    }
  }
  // A fragment of rows 16 mt .. 16 mt + 15 of the warp: matrices {rows 0-7, cols 0-7},
  // {rows 8-15, cols 0-7}, {rows 0-7, cols 8-15}, {rows 8-15, cols 8-15}.
  const uint32_t q_lane = smem + L::q_offset + ((warp * kRows + (m & 1) * 8 + mr) * L::ld + (m >> 1) * 8) * 2;
  __syncthreads();

  // Key range of the block: [block_lo, block_hi]; keys past block_hi are zero-filled.
  int block_lo = INT_MAX, block_hi = -1;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    block_lo = min(block_lo, warp_lo[w]);
    block_hi = max(block_hi, warp_hi[w]);
  }
  const int first_tile = block_lo / kKeys, last_tile = block_hi / kKeys;

  const DeviceKvHead<const __half> kvs = device_kv_head<const __half>(p.k, p.v, p.head_stride, p.kv_heads, kvh);
  auto load_tile = [&](int tile, int stage) {
    const uint32_t kdst = smem + stage * 2 * L::tile * 2;
    const uint32_t vdst = kdst + L::tile * 2;
    for (int idx = threadIdx.x; idx < kKeys * kChunks; idx += kThreads) {
      const int key = idx / kChunks, chunk = idx % kChunks;
      const int pos = tile * kKeys + key;
      const bool in = pos <= block_hi;
      const int64_t src = kvs.row(in ? pos : 0) * HD + chunk * 8;
      const uint32_t off = (key * L::ld + chunk * 8) * 2;
      cp_async16(kdst + off, kvs.k + src, in ? 16 : 0);
      cp_async16(vdst + off, kvs.v + src, in ? 16 : 0);
    }
  };

  float o[MT][HD / 8][4];
  fill_fragments(o, 0.0f);
  float row_max[MT][2], row_sum[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      row_max[mt][hf] = -INFINITY;
      row_sum[mt][hf] = 0.0f;
    }

  // ldmatrix row addresses of this lane (in halves, within a tile):
  //  K (B of Q K^T): matrices {keys 0-7, dims 0-7}, {keys 0-7, dims 8-15}, {keys 8-15, dims 0-7},
  //    {keys 8-15, dims 8-15} of a 16-key, 16-dim block -> regs {0,1}: key block 0, {2,3}: key block 1
  //  V (B of P V, transposed): {keys 0-7, dims 0-7}, {keys 8-15, dims 0-7}, {keys 0-7, dims 8-15},
  //    {keys 8-15, dims 8-15} -> regs {0,1}: dim block 0, {2,3}: dim block 1
  const uint32_t k_lane = ((m >> 1) * 8 + mr) * L::ld + (m & 1) * 8;
  const uint32_t v_lane = ((m & 1) * 8 + mr) * L::ld + (m >> 1) * 8;

  // One barrier per tile: after it, this tile's K/V have landed for every thread and every
  // warp is done with the previous tile, whose stage then receives the next tile while this
  // one is computed.
  load_tile(first_tile, 0);
  cp_async_commit();
  for (int tile = first_tile; tile <= last_tile; ++tile) {
    const int stage = (tile - first_tile) & 1;
    cp_async_wait_all();
    __syncthreads();
    if (tile < last_tile) {
      load_tile(tile + 1, stage ^ 1);
      cp_async_commit();
    }

    const int kb0 = tile * kKeys;
    const bool seen = kb0 <= warp_last_pos && kb0 + kKeys - 1 >= warp_lo_key;
    if (seen) {
      const uint32_t ks = smem + stage * 2 * L::tile * 2;
      const uint32_t vs = ks + L::tile * 2;

      // S = Q K^T for the warp's rows and the tile's keys.
      float s[MT][kKeys / 8][4];
      fill_fragments(s, 0.0f);
#pragma unroll
      for (int kk = 0; kk < HD / 16; ++kk) {
        uint32_t a[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          if constexpr (MT == 1) {
#pragma unroll
            for (int e = 0; e < 4; ++e) a[mt][e] = qf[kk][e];
          } else {
            ldmatrix_x4(a[mt], q_lane + (mt * 16 * L::ld + kk * 16) * 2);
          }
        }
        mma_blocks<MT, kKeys / 16, false>(s, a, ks + (k_lane + kk * 16) * 2, 16 * L::ld * 2);
      }

      if (p.softcap != 0.0f) {
        const float inv_cap = 1.0f / p.softcap;
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int nb = 0; nb < kKeys / 8; ++nb)
#pragma unroll
            for (int e = 0; e < 4; ++e) s[mt][nb][e] = p.softcap * tanhf(s[mt][nb][e] * inv_cap);
      }
      if (always_mask || kb0 + kKeys - 1 > warp_first_pos) {
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int nb = 0; nb < kKeys / 8; ++nb)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              const int4 row = row_info[warp * kRows + 16 * mt + g + 8 * (e >> 1)];  // {i, wlo, hw, uniform}
              const int j = kb0 + nb * 8 + 2 * c + (e & 1);
              const bool visible = kv_sees<int>(row.x, j, row.y, row.z, p.head_sink);
              s[mt][nb][e] = visible ? (row.w ? 0.0f : s[mt][nb][e]) : -INFINITY;
            }
      }

      // Online softmax per row; the rescale factor multiplies the running sum and O.
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
          float tile_max = -INFINITY;
#pragma unroll
          for (int nb = 0; nb < kKeys / 8; ++nb)
            tile_max = fmaxf(tile_max, fmaxf(s[mt][nb][2 * hf], s[mt][nb][2 * hf + 1]));
          tile_max = quad_max(tile_max);
          const float new_max = fmaxf(row_max[mt][hf], tile_max);
          const float ref = new_max == -INFINITY ? 0.0f : new_max;  // all -inf so far: weights exp2(-inf) = 0
          const float ref_scaled = ref * kLog2e;
          const float alpha = fast_exp2(row_max[mt][hf] * kLog2e - ref_scaled);  // 0 when row_max is -inf
          row_max[mt][hf] = new_max;
          float sum = 0.0f;
#pragma unroll
          for (int nb = 0; nb < kKeys / 8; ++nb)
#pragma unroll
            for (int e = 2 * hf; e < 2 * hf + 2; ++e) {
              const float w = fast_exp2(fmaf(s[mt][nb][e], kLog2e, -ref_scaled));
              s[mt][nb][e] = w;
              sum += w;
            }
          row_sum[mt][hf] = row_sum[mt][hf] * alpha + sum;
#pragma unroll
          for (int nb = 0; nb < HD / 8; ++nb) {
            o[mt][nb][2 * hf] *= alpha;
            o[mt][nb][2 * hf + 1] *= alpha;
          }
        }

        // O += P V: P's A fragment of key chunk kc is the pair of S blocks 2kc, 2kc+1.
#pragma unroll
      for (int kc = 0; kc < kKeys / 16; ++kc) {
        uint32_t a[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          a[mt][0] = pack_half2(s[mt][2 * kc][0], s[mt][2 * kc][1]);
          a[mt][1] = pack_half2(s[mt][2 * kc][2], s[mt][2 * kc][3]);
          a[mt][2] = pack_half2(s[mt][2 * kc + 1][0], s[mt][2 * kc + 1][1]);
          a[mt][3] = pack_half2(s[mt][2 * kc + 1][2], s[mt][2 * kc + 1][3]);
        }
        mma_blocks<MT, HD / 16, true>(o, a, vs + (v_lane + kc * 16 * L::ld) * 2, 16 * 2);
      }
    }
  }

  // O / sum, or the override's output.
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      const float total = quad_sum(row_sum[mt][hf]);
      const RowPlace rp = row_place(p, kvh, n_rows_total, warp_row0 + 16 * mt + g + 8 * hf);
      if (!rp.valid) continue;
      const float inv = total > 0.0f ? 1.0f / total : 0.0f;
      const HeadOverride ov = p.overrides ? static_cast<HeadOverride>(p.overrides[rp.h]) : HeadOverride::none;
      float* orow = p.out + rp.offset<HD>(p);
#pragma unroll
      for (int nb = 0; nb < HD / 8; ++nb) {
        const int d = nb * 8 + 2 * c;
        float2 val = make_float2(o[mt][nb][2 * hf] * inv, o[mt][nb][2 * hf + 1] * inv);
        if (ov == HeadOverride::zero) val = make_float2(0.0f, 0.0f);
        if (ov == HeadOverride::mean) val = *reinterpret_cast<const float2*>(p.head_means + rp.h * HD + d);
        *reinterpret_cast<float2*>(orow + d) = val;
      }
    }
}

template <int HD, int kWarps, int MT>
void launch(const PrefillParams& p, int n_kv_head, cudaStream_t stream) {
  using L = PrefillLayout<HD, kWarps, MT>;
  static bool configured = false;  // more than 48 KiB of dynamic shared memory: opt in once
  if (!configured) {
    RHEAD_CUDA_CHECK(cudaFuncSetAttribute(flash_prefill_kernel<HD, kWarps, MT>,
                                          cudaFuncAttributeMaxDynamicSharedMemorySize, L::bytes));
    configured = true;
  }
  constexpr int kBlockRows = kWarps * 16 * MT;
  const int64_t rows = static_cast<int64_t>(p.n_tokens) * p.group;
  const int64_t tiles = (rows + kBlockRows - 1) / kBlockRows;
  flash_prefill_kernel<HD, kWarps, MT>
      <<<dim3(static_cast<unsigned>(tiles), n_kv_head), kWarps * 32, L::bytes, stream>>>(p);
  RHEAD_CUDA_LAUNCHED("flash_prefill_kernel");
}

// Block shape: warps x rows per warp. RHEAD_CUDA_FLASH_SHAPE = 8x16 (default), 4x16 or 4x32.
enum class BlockShape { w8x16, w4x16, w4x32 };

BlockShape block_shape() {
  const char* v = std::getenv("RHEAD_CUDA_FLASH_SHAPE");
  const std::string s = v ? v : "";
  if (s == "4x16") return BlockShape::w4x16;
  if (s == "4x32") return BlockShape::w4x32;
  return BlockShape::w8x16;
}

template <int HD>
void launch_shape(const PrefillParams& p, int n_kv_head, cudaStream_t stream) {
  switch (block_shape()) {
    case BlockShape::w4x16: launch<HD, 4, 1>(p, n_kv_head, stream); break;
    case BlockShape::w4x32: launch<HD, 4, 2>(p, n_kv_head, stream); break;
    default: launch<HD, 8, 1>(p, n_kv_head, stream); break;
  }
}

int device_major() {
  static int major = -1;
  if (major < 0) {
    int dev = 0;
    RHEAD_CUDA_CHECK(cudaGetDevice(&dev));
    RHEAD_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  }
  return major;
}

int clamp_to_int(int64_t x) { return static_cast<int>(x < 0 ? 0 : (x > INT_MAX ? INT_MAX : x)); }

}  // namespace

// Opt-in (RHEAD_CUDA_FLASH=mma) until its tests have passed on a GPU: it has been compiled and
// emulated, never run. scripts/gpu_check.sh runs its tests and benchmarks it.
bool flash_prefill_selected(int head_dim, bool kv_f16) {
  if (!kv_f16 || (head_dim != 64 && head_dim != 128)) return false;
  const char* kind = std::getenv("RHEAD_CUDA_FLASH");
  if (!kind || std::string(kind) != "mma") return false;
  return device_major() >= 8;
}

void flash_prefill(const FlashPrefillArgs& a, cudaStream_t stream) {
  if (a.head_dim != 64 && a.head_dim != 128)
    throw Error("flash_prefill: head_dim must be 64 or 128, not " + std::to_string(a.head_dim));
  if (a.n_kv_head <= 0 || a.n_head % a.n_kv_head != 0)
    throw Error("flash_prefill: n_head must be a multiple of n_kv_head");
  const int64_t group = a.n_head / a.n_kv_head;
  if (a.pos0 + a.n_tokens >= INT_MAX || a.n_tokens * group >= INT_MAX)
    throw Error("flash_prefill: positions and rows must fit in 31 bits");
  if (a.n_tokens <= 0) return;
  PrefillParams p{};
  p.q = a.q;
  p.k = static_cast<const __half*>(a.k);
  p.v = static_cast<const __half*>(a.v);
  p.head_stride = a.head_stride;
  p.kv_heads = a.kv_heads;
  p.out = a.out;
  p.n_tokens = static_cast<int>(a.n_tokens);
  p.pos0 = static_cast<int>(a.pos0);
  p.n_head = a.n_head;
  p.group = static_cast<int>(group);
  p.window = clamp_to_int(a.window);
  p.head_sink = clamp_to_int(a.head_sink);
  p.head_window = a.head_window;
  p.overrides = a.overrides;
  p.head_means = a.head_means;
  p.scale = a.scale;
  p.softcap = a.softcap;
  if (a.head_dim == 64)
    launch_shape<64>(p, a.n_kv_head, stream);
  else
    launch_shape<128>(p, a.n_kv_head, stream);
}

}  // namespace rhead::cuda

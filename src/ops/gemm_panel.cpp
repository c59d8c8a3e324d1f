// Panel GEMMs of prefill (see gemm_panel.h): the scalar twins, the f32 packing and the
// run-time dispatch.
#include "ops/gemm_panel.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "ops/quant.h"

namespace rhead {

namespace {
uint32_t bf16_pair(float lo, float hi) { return uint32_t{f32_to_bf16(lo)} | (uint32_t{f32_to_bf16(hi)} << 16); }
float pair_half(uint32_t p, int i) {
  const uint32_t bits = i ? (p & 0xffff0000u) : (p << 16);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
}  // namespace

bool cpu_has_bf16_gemm() {
  static const bool has = [] {
    if (!cpu_has_isa(KernelISA::AVX512)) return false;
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    // CPUID leaf 7, sub-leaf 1: EAX bit 5 is AVX512_BF16.
    return __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax & (1u << 5));
  }();
  return has;
}

bool cpu_has_amx_bf16_gemm() {
  static const bool has = [] {
    const char* env = std::getenv("RHEAD_AMX");
    if ((env && std::strcmp(env, "0") == 0) || !cpu_has_bf16_gemm()) return false;
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    // CPUID leaf 7, sub-leaf 0: EDX bit 22 is AMX-BF16, bit 24 AMX-TILE.
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) || !(edx & (1u << 22)) || !(edx & (1u << 24))) return false;
    // Linux hands out the 8 KB tile data state only on request (ARCH_REQ_XCOMP_PERM for
    // XFEATURE_XTILEDATA); a tile instruction without it kills the process.
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return has;
}

bool cpu_has_f32_panel_gemm() { return cpu_has_isa(KernelISA::AVX512); }

int64_t f32_activations_size(int64_t T, int64_t K) { return (T + kPanelTokens - 1) / kPanelTokens * K * kPanelTokens; }

void pack_f32_activations(const float* x, int64_t T, int64_t K, float* out) {
  const int64_t blocks = (T + kPanelTokens - 1) / kPanelTokens;
  for (int64_t b = 0; b < blocks; ++b) {
    float* ob = out + b * K * kPanelTokens;
    for (int64_t j = 0; j < kPanelTokens; ++j) {
      const int64_t t = b * kPanelTokens + j;
      for (int64_t k = 0; k < K; ++k) ob[k * kPanelTokens + j] = t < T ? x[t * K + k] : 0.0f;
    }
  }
}

void gemm_f32_panel_ref(const float* xp, int64_t T, int64_t K, const float* panel, int64_t n_rows, float* y,
                        int64_t ldy) {
  for (int64_t t = 0; t < T; ++t) {
    const float* xb = xp + (t / kPanelTokens) * K * kPanelTokens + t % kPanelTokens;
    for (int64_t r = 0; r < n_rows; ++r) {
      float acc = 0.0f;
      for (int64_t k = 0; k < K; ++k) acc = std::fma(xb[k * kPanelTokens], panel[r * K + k], acc);
      y[t * ldy + r] = acc;
    }
  }
}

void gemm_f32_panel(const float* xp, int64_t T, int64_t K, const float* panel, int64_t n_rows, float* y, int64_t ldy) {
  if (cpu_has_f32_panel_gemm()) return detail::gemm_f32_panel_avx512(xp, T, K, panel, n_rows, y, ldy);
  gemm_f32_panel_ref(xp, T, K, panel, n_rows, y, ldy);
}

int64_t bf16_activations_size(int64_t T, int64_t K) {
  return (T + kPanelTokens - 1) / kPanelTokens * (K / 2) * kPanelTokens;
}

void pack_bf16_activations_ref(const float* x, int64_t T, int64_t K, uint32_t* out) {
  const int64_t blocks = (T + kPanelTokens - 1) / kPanelTokens, pairs = K / 2;
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t p = 0; p < pairs; ++p)
      for (int64_t j = 0; j < kPanelTokens; ++j) {
        const int64_t t = b * kPanelTokens + j;
        out[(b * pairs + p) * kPanelTokens + j] = t < T ? bf16_pair(x[t * K + 2 * p], x[t * K + 2 * p + 1]) : 0;
      }
}

void pack_bf16_panel_row_ref(const float* row, int64_t r, int64_t K, uint32_t* panel) {
  for (int64_t p = 0; p < K / 2; ++p) panel[r * (K / 2) + p] = bf16_pair(row[2 * p], row[2 * p + 1]);
}

namespace {
// The scalar twins' loop: y[t * ldy + r] folds step(acc, activation pair, weight pair) over the
// pairs of row r, from 0.
template <class Step>
void bf16_panel_twin(const uint32_t* xp, int64_t T, int64_t K, const uint32_t* panel, int64_t n_rows, float* y,
                     int64_t ldy, Step step) {
  const int64_t pairs = K / 2;
  for (int64_t t = 0; t < T; ++t) {
    const uint32_t* xb = xp + (t / kPanelTokens) * pairs * kPanelTokens + t % kPanelTokens;
    for (int64_t r = 0; r < n_rows; ++r) {
      float acc = 0.0f;
      for (int64_t p = 0; p < pairs; ++p) acc = step(acc, xb[p * kPanelTokens], panel[r * pairs + p]);
      y[t * ldy + r] = acc;
    }
  }
}
}  // namespace

void gemm_bf16_panel_ref(const uint32_t* xp, int64_t T, int64_t K, const uint32_t* panel, int64_t n_rows, float* y,
                         int64_t ldy) {
  bf16_panel_twin(xp, T, K, panel, n_rows, y, ldy, [](float acc, uint32_t a, uint32_t w) {
    acc += pair_half(a, 1) * pair_half(w, 1);
    acc += pair_half(a, 0) * pair_half(w, 0);
    return acc;
  });
}

namespace detail {
float amx_bf16_fma(uint16_t a, uint16_t b, float acc) {
  auto widen = [](uint16_t h) {
    const float f = bf16_to_f32(h);
    return std::fpclassify(f) == FP_SUBNORMAL ? std::copysign(0.0f, f) : f;
  };
  const float r = std::fma(widen(a), widen(b), acc);
  return std::fpclassify(r) == FP_SUBNORMAL ? std::copysign(0.0f, r) : r;
}
}  // namespace detail

void gemm_bf16_panel_amx_ref(const uint32_t* xp, int64_t T, int64_t K, const uint32_t* panel, int64_t n_rows, float* y,
                             int64_t ldy) {
  bf16_panel_twin(xp, T, K, panel, n_rows, y, ldy, [](float acc, uint32_t a, uint32_t w) {
    acc = detail::amx_bf16_fma(static_cast<uint16_t>(w), static_cast<uint16_t>(a), acc);
    return detail::amx_bf16_fma(static_cast<uint16_t>(w >> 16), static_cast<uint16_t>(a >> 16), acc);
  });
}

void pack_bf16_activations(const float* x, int64_t T, int64_t K, uint32_t* out) {
  if (cpu_has_bf16_gemm()) return detail::pack_bf16_activations_avx512(x, T, K, out);
  pack_bf16_activations_ref(x, T, K, out);
}

void pack_bf16_panel_row(const float* row, int64_t r, int64_t K, uint32_t* panel) {
  if (cpu_has_bf16_gemm()) return detail::pack_bf16_panel_row_avx512(row, r, K, panel);
  pack_bf16_panel_row_ref(row, r, K, panel);
}

void gemm_bf16_panel(const uint32_t* xp, int64_t T, int64_t K, const uint32_t* panel, int64_t n_rows, float* y,
                     int64_t ldy) {
  if (K % 32 == 0 && cpu_has_amx_bf16_gemm()) return detail::gemm_bf16_panel_amx(xp, T, K, panel, n_rows, y, ldy);
  if (cpu_has_bf16_gemm()) return detail::gemm_bf16_panel_avx512(xp, T, K, panel, n_rows, y, ldy);
  gemm_bf16_panel_ref(xp, T, K, panel, n_rows, y, ldy);
}

}  // namespace rhead

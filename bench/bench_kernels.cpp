// Row-kernel throughput per weight type and instruction set: a matrix-vector product
// (dot_row over every row, and dot_row_int8 where the type has an integer kernel) and row
// dequantization, reported as GB/s of weight bytes read ("weights", per CPU second).
// Two matrix sizes: one that stays in cache (kernel speed) and one that does not
// (what decode sees). Single-threaded. Also prefill's matmul per type (prefill256/), and the
// bf16 panel kernel alone on AVX-512 BF16 and, where the CPU has them, on AMX tiles
// (bf16_panel/avx512, bf16_panel/amx; RHEAD_AMX=0 keeps the tiles out of matmul, not of this).
//
//   bench_kernels [--benchmark_filter=q4_K] [google benchmark flags]
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "bench_context.h"
#include "ops/gemm_panel.h"
#include "ops/ops.h"
#include "ops/quant.h"

namespace {

using namespace rhead;

constexpr int64_t kRowLength = 4096;

struct Matrix {
  DType type;
  int64_t rows;
  std::vector<uint8_t> bytes;
  int64_t stride() const { return row_bytes(type, kRowLength); }
};

Matrix make_matrix(DType t, int64_t target_bytes) {
  Matrix m{t, std::max<int64_t>(1, target_bytes / row_bytes(t, kRowLength)), {}};
  m.bytes.resize(size_t(m.rows * m.stride()));
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<float> src(kRowLength);
  for (int64_t r = 0; r < m.rows; ++r) {
    // A few distinct rows repeated: quantizing 64 MiB of K-quants would dominate start-up.
    if (r < 16) {
      for (auto& v : src) v = dist(rng);
      quantize_row(t, src.data(), m.bytes.data() + r * m.stride(), kRowLength);
    } else {
      std::copy_n(m.bytes.data() + (r % 16) * m.stride(), m.stride(), m.bytes.data() + r * m.stride());
    }
  }
  return m;
}

void set_counters(benchmark::State& state, const Matrix& m) {
  double bytes = double(m.rows * m.stride());
  state.counters["weights"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["rows"] = double(m.rows);
}

void bench_matvec(benchmark::State& state, DType t, KernelISA isa, int64_t target_bytes) {
  Matrix m = make_matrix(t, target_bytes);
  std::vector<float> x(kRowLength), y(size_t(m.rows));
  std::mt19937 rng(2);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (auto& v : x) v = dist(rng);
  for (auto _ : state) {
    for (int64_t r = 0; r < m.rows; ++r)
      y[size_t(r)] = dot_row_isa(isa, t, m.bytes.data() + r * m.stride(), x.data(), kRowLength);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, m);
}

// The integer path: x quantized once per product (included in the time), rows dotted with int8.
void bench_matvec_int8(benchmark::State& state, DType t, KernelISA isa, int64_t target_bytes) {
  Matrix m = make_matrix(t, target_bytes);
  std::vector<float> x(kRowLength), y(size_t(m.rows));
  std::mt19937 rng(2);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (auto& v : x) v = dist(rng);
  QuantizedVector xq;
  for (auto _ : state) {
    quantize_vector(x.data(), kRowLength, xq);
    for (int64_t r = 0; r < m.rows; ++r) y[size_t(r)] = dot_row_int8_isa(isa, t, m.bytes.data() + r * m.stride(), xq);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, m);
}

void bench_dequantize(benchmark::State& state, DType t, KernelISA isa, int64_t target_bytes) {
  Matrix m = make_matrix(t, target_bytes);
  std::vector<float> out(kRowLength);
  for (auto _ : state) {
    for (int64_t r = 0; r < m.rows; ++r) {
      dequantize_row_isa(isa, t, m.bytes.data() + r * m.stride(), out.data(), kRowLength);
      benchmark::DoNotOptimize(out.data());
    }
    benchmark::ClobberMemory();
  }
  set_counters(state, m);
}

// Prefill's matmul (T tokens of a 2048 x 2048 matrix, single-threaded): GFLOP/s of the
// whole call (packing and dequantization included) on the path matmul takes here (a panel
// GEMM: bf16 for Q8_0 where the CPU has AVX-512 BF16, f32 for F16), and on the dequantize +
// OpenBLAS sgemm path for comparison.
void bench_prefill(benchmark::State& state, DType t, int64_t T, bool f32_path) {
  constexpr int64_t kDim = 2048;
  std::vector<float> src(size_t(kDim * kDim)), x(size_t(T * kDim)), y(size_t(T * kDim));
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  for (auto& v : src) v = dist(rng);
  for (auto& v : x) v = 50 * dist(rng);
  std::vector<uint8_t> bytes(size_t(kDim * row_bytes(t, kDim)));
  for (int64_t r = 0; r < kDim; ++r)
    quantize_row(t, src.data() + r * kDim, bytes.data() + r * row_bytes(t, kDim), kDim);
  Weight w;
  w.type = f32_path ? DType::F32 : t;
  w.rows = w.cols = kDim;
  std::vector<float> deq;
  if (f32_path) {  // the f32 path's dequantization is timed: it runs inside matmul for f16/q8_0
    deq.resize(src.size());
    w.data = deq.data();
  } else {
    w.data = bytes.data();
  }
  for (auto _ : state) {
    if (f32_path)
      for (int64_t r = 0; r < kDim; ++r)
        dequantize_row(t, bytes.data() + r * row_bytes(t, kDim), deq.data() + r * kDim, kDim);
    matmul(w, x.data(), T, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * double(kDim) * kDim * T / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

// The bf16 panel kernel alone (one panel of kPanelRows rows, K = 2048, 256 tokens, packed
// beforehand, single-threaded): AVX-512 BF16 against AMX tiles, on the CPUs that have them.
void bench_bf16_panel(benchmark::State& state, bool amx) {
  constexpr int64_t K = 2048, T = 256;
  std::mt19937 rng(4);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(size_t(T * K)), w(size_t(kPanelRows * K)), y(size_t(T * kPanelRows));
  for (auto& v : x) v = dist(rng);
  for (auto& v : w) v = dist(rng);
  std::vector<uint32_t> xp(size_t(bf16_activations_size(T, K))), panel(size_t(kPanelRows * K / 2));
  pack_bf16_activations(x.data(), T, K, xp.data());
  for (int64_t r = 0; r < kPanelRows; ++r) pack_bf16_panel_row(w.data() + r * K, r, K, panel.data());
  for (auto _ : state) {
    if (amx)
      detail::gemm_bf16_panel_amx(xp.data(), T, K, panel.data(), kPanelRows, y.data(), kPanelRows);
    else
      detail::gemm_bf16_panel_avx512(xp.data(), T, K, panel.data(), kPanelRows, y.data(), kPanelRows);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * double(kPanelRows) * K * T / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

int main(int argc, char** argv) {
  const DType types[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1,
                         DType::Q5_0, DType::Q5_1, DType::Q4_K, DType::Q5_K, DType::Q6_K};
  const std::pair<const char*, int64_t> sizes[] = {{"cache", int64_t(1) << 20}, {"memory", int64_t(64) << 20}};
  for (auto [size_name, bytes] : sizes)
    for (DType t : types)
      for (KernelISA isa : {KernelISA::Scalar, KernelISA::AVX2, KernelISA::AVX512}) {
        if (!cpu_has_isa(isa)) continue;
        std::string suffix = std::string(dtype_name(t)) + "/" + isa_name(isa) + "/" + size_name;
        benchmark::RegisterBenchmark(("matvec/" + suffix).c_str(), bench_matvec, t, isa, bytes)
            ->Unit(benchmark::kMicrosecond);
        if (has_int8_dot(t) && cpu_has_int8_isa(isa))
          benchmark::RegisterBenchmark(("matvec_int8/" + suffix).c_str(), bench_matvec_int8, t, isa, bytes)
              ->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark(("dequantize/" + suffix).c_str(), bench_dequantize, t, isa, bytes)
            ->Unit(benchmark::kMicrosecond);
      }
  for (DType t : {DType::F16, DType::Q8_0})
    for (bool f32_path : {false, true}) {
      std::string name = std::string("prefill256/") + dtype_name(t) + (f32_path ? "/sgemm" : "/matmul");
      benchmark::RegisterBenchmark(name.c_str(), bench_prefill, t, int64_t{256}, f32_path)
          ->Unit(benchmark::kMillisecond);
    }
  if (cpu_has_bf16_gemm())
    benchmark::RegisterBenchmark("bf16_panel/avx512", bench_bf16_panel, false)->Unit(benchmark::kMicrosecond);
  if (cpu_has_amx_bf16_gemm())
    benchmark::RegisterBenchmark("bf16_panel/amx", bench_bf16_panel, true)->Unit(benchmark::kMicrosecond);
  benchmark::Initialize(&argc, argv);
  add_cpu_context();
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

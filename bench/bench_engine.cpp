// Engine speed on whole models: prefill and decode tokens/s, and the weight bytes that each
// decode token streams from memory (GB/s) against the machine's own memory bandwidth,
// measured in the same run by a multi-threaded read and a memcpy over a buffer far larger
// than the caches.
//
//   bench_engine [google benchmark flags] MODEL.gguf...
//   RHEAD_BENCH_MODELS=a.gguf:b.gguf bench_engine
//
// Meant for the ~1B random-weight GGUFs of make_bench_model (f16, q8_0, q4_K):
//   make_bench_model /tmp/bench-f16.gguf --type f16   (likewise q8_0, q4_K)
// MoE next to the dense model of the same active size (top-2 of 8 half-width experts):
//   make_bench_model /tmp/moe.gguf --type q8_0 --preset moe-1b
//   make_bench_model /tmp/dense.gguf --type q8_0
//   RHEAD_BENCH_PREFILL= RHEAD_BENCH_DEPTHS=0 bench_engine --benchmark_repetitions=3 (continued:)
//       --benchmark_enable_random_interleaving=true /tmp/moe.gguf /tmp/dense.gguf
// For an MoE model the bytes and matmul parameters per token count the used experts only.
// The decode rows of all models at one depth run back to back; a closing table gives each
// model's decode tokens/s per depth (the median over repetitions) and, for every MoE model
// whose active matmul parameters per token are within 1% of a dense model's, the ratio
// MoE / dense.
// With no model given it runs the small fixtures from ../shared, whose shapes are far too
// small for the figures to mean much.
//
// Figures per model:
//   prefill/N     N prompt tokens (512, 4096, 16384) in one forward call (chunks of the session
//                 default); tokens_per_s, GFLOP/s of the weight matmuls (2 * matmul params * N)
//                 plus attention (4 * n_head * head_dim per visible key, per layer), and
//                 tokens_per_cpu_s = tokens per second of the process's CPU time (all threads):
//                 on a shared, loaded machine the figure to compare between builds.
//                 The 4096 and 16384 runs are one iteration each, after an untimed forward of
//                 up to 512 tokens (the weights are faulted in and the buffers allocated).
//   decode/dD     one token per iteration at depth D (0, 4096, 16384) .. D + 64 (greedy step,
//                 f16 KV cache; the cache of the prefill/D run is reused); tokens_per_s,
//                 weight_GB/s = weight bytes read per token * tokens/s, kv_GB/s = KV bytes
//                 read per token * tokens/s, of_read_bw = (weight + KV) GB/s / the measured
//                 read bandwidth, and tokens_per_cpu_s.
//   RHEAD_BENCH_PREFILL / RHEAD_BENCH_DEPTHS (comma lists; empty: none) replace the default lengths.
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench_context.h"
#include "io/error.h"
#include "model/generate.h"
#include "model/loader.h"
#include "model/session.h"
#include "ops/threads.h"

namespace {

using namespace rhead;

constexpr int64_t kDecodeWindow = 64;  // decode positions D .. D + kDecodeWindow
constexpr size_t kStreamBytes = size_t{1} << 30;

double g_read_gbps = 0;  // best read bandwidth seen, for the decode ratio

// ---- memory bandwidth ----

struct AlignedBuffer {
  uint8_t* data = nullptr;
  size_t size = 0;
  explicit AlignedBuffer(size_t n) : size(n) {
    data = static_cast<uint8_t*>(std::aligned_alloc(64, n));
    // Touch every page from the threads that will read it (first-touch placement).
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i += 4096)
      std::memset(data + i, static_cast<int>(i >> 12), std::min<size_t>(4096, n - i));
  }
  ~AlignedBuffer() { std::free(data); }
};

__attribute__((target("avx2"))) uint64_t read_sum(const uint8_t* p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 128 <= n; i += 128) {
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  alignas(32) uint64_t out[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(out), s);
  return out[0] + out[1] + out[2] + out[3];
}

void BM_MemoryRead(benchmark::State& state) {
  AlignedBuffer buf(kStreamBytes);
  uint64_t sink = 0;
  for (auto _ : state) {
    uint64_t total = 0;
#pragma omp parallel reduction(+ : total)
    {
      const int nt = omp_get_num_threads(), t = omp_get_thread_num();
      const size_t per = kStreamBytes / nt / 128 * 128;
      total += read_sum(buf.data + per * t, per);
    }
    sink += total;
  }
  benchmark::DoNotOptimize(sink);
  state.counters["GB/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * kStreamBytes / 1e9, benchmark::Counter::kIsRate);
  state.counters["threads"] = omp_get_max_threads();
}

void BM_MemoryCopy(benchmark::State& state) {
  AlignedBuffer src(kStreamBytes / 2), dst(kStreamBytes / 2);
  for (auto _ : state) {
#pragma omp parallel
    {
      const int nt = omp_get_num_threads(), t = omp_get_thread_num();
      const size_t per = src.size / nt;
      std::memcpy(dst.data + per * t, src.data + per * t, per);
    }
    benchmark::ClobberMemory();
  }
  // Bytes read plus bytes written.
  state.counters["GB/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * kStreamBytes / 1e9, benchmark::Counter::kIsRate);
}

// ---- models ----

struct BenchModel {
  std::string path, label;
  std::shared_ptr<const Model> model;
  int64_t decode_bytes = 0;   // weight bytes one decode token reads (layers + output head)
  int64_t matmul_params = 0;  // multiply-adds per token in the weight matmuls (active experts only)
  bool moe = false;
  // Session left by prefill/N, with N tokens in its cache, for decode/dN.
  std::map<int64_t, std::unique_ptr<Session>> filled;
};

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

// Attention flops of n_tokens queries at positions pos0..: 4 * n_head * head_dim per key
// (score and mix), summed over layers.
double attention_flops(const ModelConfig& c, int64_t pos0, int64_t n_tokens) {
  const double keys = static_cast<double>(n_tokens) * pos0 + n_tokens * (n_tokens + 1) / 2.0;
  return 4.0 * c.n_head * c.head_dim * keys * c.n_layer;
}

BenchModel load_bench_model(const std::string& path) {
  BenchModel b;
  b.path = path;
  b.label = std::filesystem::path(path).filename().string();
  b.model = load_model(path).model;
  const Model& m = *b.model;
  auto add = [&](const Weight& w) {
    b.decode_bytes += w.bytes();
    b.matmul_params += w.rows * w.cols;
  };
  // MoE: a token reads its n_expert_used experts only; count the active share of them.
  const ModelConfig& mc = m.config;
  b.moe = mc.n_expert > 0;
  auto add_expert = [&](const Weight& w) {
    b.decode_bytes += w.bytes() * mc.n_expert_used / mc.n_expert;
    b.matmul_params += w.rows * w.cols * mc.n_expert_used / mc.n_expert;
  };
  for (const auto& l : m.layers) {
    for (const Weight* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down, &l.router})
      if (w->rows > 0) add(*w);
    for (const auto* experts : {&l.exp_gate, &l.exp_up, &l.exp_down})
      for (const Weight& w : *experts) add_expert(w);
  }
  add(m.output);
  const ModelConfig& c = m.config;
  std::printf(
      "%s: %d layers, dim %d, ff %d, heads %d/%d, vocab %d, %.3g params, %.3f GB of weights, "
      "%.3f GB read per decode token (%s matmul weights), %.4g active matmul params per token\n",
      b.label.c_str(), c.n_layer, c.n_embd, c.n_expert > 0 ? c.n_ff_expert : c.n_ff, c.n_head, c.n_kv_head, c.n_vocab,
      static_cast<double>(m.n_params()), m.weight_bytes() / 1e9, b.decode_bytes / 1e9, dtype_name(m.layers[0].wq.type),
      static_cast<double>(b.matmul_params));
  return b;
}

void BM_Prefill(benchmark::State& state, BenchModel* b, int64_t n_tokens) {
  const auto tokens = bench_random_tokens(n_tokens, b->model->config.n_vocab);
  SessionOptions so;
  so.n_ctx = n_tokens + kDecodeWindow;
  auto session = std::make_unique<Session>(b->model, so);
  // One untimed forward first, as llama-bench warms up: a prefill of 512 tokens is a single
  // timed iteration, which would otherwise also pay for faulting in the mapped weights and
  // for the first allocation of every scratch buffer.
  session->forward(std::span<const int32_t>(tokens.data(), std::min<size_t>(tokens.size(), 512)));
  const double cpu0 = cpu_seconds();
  for (auto _ : state) {
    session->truncate(0);
    benchmark::DoNotOptimize(session->forward(tokens));
  }
  const double cpu = cpu_seconds() - cpu0;
  const double n = static_cast<double>(state.iterations()) * n_tokens;
  const ModelConfig& c = b->model->config;
  const double flops = n * 2.0 * b->matmul_params + state.iterations() * attention_flops(c, 0, n_tokens);
  state.counters["tokens_per_s"] = benchmark::Counter(n, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsRate);
  state.counters["tokens_per_cpu_s"] = n / cpu;
  b->filled[n_tokens] = std::move(session);
}

void BM_Decode(benchmark::State& state, BenchModel* b, int64_t depth) {
  const ModelConfig& c = b->model->config;
  std::unique_ptr<Session> session;
  if (auto it = b->filled.find(depth); it != b->filled.end()) {
    session = std::move(it->second);
    b->filled.erase(it);
  } else {
    SessionOptions so;
    so.n_ctx = depth + kDecodeWindow;
    session = std::make_unique<Session>(b->model, so);
    if (depth > 0) session->forward(bench_random_tokens(depth, c.n_vocab));
  }
  session->truncate(depth);
  int32_t next = 1;
  double kv_bytes = 0;  // K and V bytes the decoded tokens read (f16 cache)
  const double cpu0 = cpu_seconds();
  for (auto _ : state) {
    if (session->n_past() >= depth + kDecodeWindow) session->truncate(depth);
    kv_bytes += 2.0 * 2.0 * c.n_layer * c.n_kv_head * c.head_dim * (session->n_past() + 1);
    ForwardOptions fo;
    fo.decode = true;
    next = argmax_token(session->forward(std::span<const int32_t>(&next, 1), fo));
  }
  const double cpu = cpu_seconds() - cpu0;
  const double n = static_cast<double>(state.iterations());
  state.counters["tokens_per_s"] = benchmark::Counter(n, benchmark::Counter::kIsRate);
  state.counters["weight_GB/s"] = benchmark::Counter(n * b->decode_bytes / 1e9, benchmark::Counter::kIsRate);
  state.counters["kv_GB/s"] = benchmark::Counter(kv_bytes / 1e9, benchmark::Counter::kIsRate);
  state.counters["tokens_per_cpu_s"] = n / cpu;
  // Google Benchmark calls this function again with more iterations until min_time is
  // reached: keep the filled cache for the next call instead of prefilling it again.
  session->truncate(depth);
  b->filled[depth] = std::move(session);
}

std::vector<int64_t> lengths_from_env(const char* name, std::vector<int64_t> fallback) {
  const char* env = std::getenv(name);
  if (!env) return fallback;
  std::vector<int64_t> out;
  for (const char* p = env; *p;) {
    char* end = nullptr;
    const long long v = std::strtoll(p, &end, 10);
    if (end == p) break;
    out.push_back(v);
    p = *end == ',' ? end + 1 : end;
  }
  return out;
}

// Keeps the read bandwidth (memory/read runs first) and adds the decode ratio to it; keeps
// every repetition's decode tokens/s for the closing table.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  // "decode/dD/label" -> tokens/s of each repetition.
  std::map<std::string, std::vector<double>> decode_tokens_per_s;

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.run_type == Run::RT_Iteration && r.run_name.function_name.rfind("decode/", 0) == 0 &&
          r.counters.count("tokens_per_s"))
        decode_tokens_per_s[r.run_name.function_name].push_back(static_cast<double>(r.counters.at("tokens_per_s")));
      if (r.run_name.function_name == "memory/read" && r.counters.count("GB/s")) {
        // Rate counters are already divided by the time when they reach a reporter.
        g_read_gbps = std::max(g_read_gbps, static_cast<double>(r.counters.at("GB/s")));
      }
    }
    std::vector<Run> out = runs;
    for (Run& r : out) {
      auto it = r.counters.find("weight_GB/s");
      if (it != r.counters.end() && g_read_gbps > 0) {
        const double kv = r.counters.count("kv_GB/s") ? static_cast<double>(r.counters.at("kv_GB/s")) : 0.0;
        r.counters["read_bw_GB/s"] = g_read_gbps;
        r.counters["of_read_bw"] = (static_cast<double>(it->second) + kv) / g_read_gbps;
      }
    }
    ConsoleReporter::ReportRuns(out);
  }
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Decode tokens/s per depth and model (median over repetitions), then MoE / dense ratios for
// pairs of the same active size.
void print_decode_summary(const std::vector<std::unique_ptr<BenchModel>>& models, const std::vector<int64_t>& depths,
                          const std::map<std::string, std::vector<double>>& runs) {
  if (models.empty() || depths.empty()) return;
  auto key = [](int64_t d, const BenchModel& m) { return "decode/d" + std::to_string(d) + "/" + m.label; };
  size_t reps = 0;
  for (const auto& [name, values] : runs) reps = std::max(reps, values.size());
  if (reps == 0) return;
  std::printf("\ndecode tokens/s, median of %zu repetition%s\n%-8s", reps, reps == 1 ? "" : "s", "depth");
  for (const auto& m : models) std::printf("  %22s", m->label.c_str());
  std::printf("\n");
  for (int64_t d : depths) {
    std::printf("%-8lld", static_cast<long long>(d));
    for (const auto& m : models) {
      auto it = runs.find(key(d, *m));
      if (it == runs.end())
        std::printf("  %22s", "-");
      else
        std::printf("  %22.3f", median(it->second));
    }
    std::printf("\n");
  }
  for (const auto& moe : models) {
    if (!moe->moe) continue;
    for (const auto& dense : models) {
      if (dense->moe) continue;
      const double rel = std::abs(static_cast<double>(moe->matmul_params) / dense->matmul_params - 1.0);
      if (rel > 0.01) continue;
      std::printf("MoE / dense of the same active size (%s: %.4g, %s: %.4g active matmul params per token):\n",
                  moe->label.c_str(), static_cast<double>(moe->matmul_params), dense->label.c_str(),
                  static_cast<double>(dense->matmul_params));
      for (int64_t d : depths) {
        auto a = runs.find(key(d, *moe)), b = runs.find(key(d, *dense));
        if (a == runs.end() || b == runs.end()) continue;
        const double ma = median(a->second), mb = median(b->second);
        std::printf("  decode/d%lld: %.3f / %.3f tokens/s = %.3f\n", static_cast<long long>(d), ma, mb,
                    mb > 0 ? ma / mb : 0.0);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  rhead::apply_wait_policy(argv);  // the wait policy rhead itself runs with (ops/threads.h)
  std::printf("threads %d, wait policy %s\n", omp_get_max_threads(), rhead::wait_policy_description().c_str());
  benchmark::Initialize(&argc, argv);
  add_cpu_context();
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) paths.push_back(argv[i]);
  if (paths.empty()) {
    if (const char* env = std::getenv("RHEAD_BENCH_MODELS")) {
      std::string s = env;
      for (size_t at = 0; at <= s.size();) {
        size_t colon = s.find(':', at);
        if (colon == std::string::npos) colon = s.size();
        if (colon > at) paths.push_back(s.substr(at, colon - at));
        at = colon + 1;
      }
    }
  }
  if (paths.empty()) {
    std::printf(
        "no model given (arguments or RHEAD_BENCH_MODELS): using the small fixtures from %s;\n"
        "make a realistic one with: make_bench_model /tmp/bench-q8_0.gguf --type q8_0\n",
        RHEAD_SHARED_DIR);
    for (const char* rel : {"/models/fmt-tiny/fmt-tiny-f32.gguf", "/models/fmt-tiny/fmt-tiny-q8_0.gguf"})
      if (std::filesystem::exists(std::string(RHEAD_SHARED_DIR) + rel))
        paths.push_back(std::string(RHEAD_SHARED_DIR) + rel);
  }
  std::printf("OpenMP threads: %d\n", omp_get_max_threads());

  std::vector<std::unique_ptr<BenchModel>> models;
  for (const auto& p : paths) {
    try {
      models.push_back(std::make_unique<BenchModel>(load_bench_model(p)));
    } catch (const Error& e) {
      std::fprintf(stderr, "skipping %s\n", e.what());
    }
  }

  benchmark::RegisterBenchmark("memory/read", BM_MemoryRead)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond)
      ->MinTime(1.0);
  benchmark::RegisterBenchmark("memory/copy", BM_MemoryCopy)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond)
      ->MinTime(1.0);
  const auto prefill_lengths = lengths_from_env("RHEAD_BENCH_PREFILL", {512, 4096, 16384});
  const auto depths = lengths_from_env("RHEAD_BENCH_DEPTHS", {0, 4096, 16384});
  for (const auto& m : models) {
    for (int64_t n : prefill_lengths) {
      auto* bm =
          benchmark::RegisterBenchmark(("prefill" + std::to_string(n) + "/" + m->label).c_str(), BM_Prefill, m.get(), n)
              ->UseRealTime()
              ->Unit(benchmark::kMillisecond);
      if (n > 1024)
        bm->Iterations(1);
      else
        bm->MinTime(2.0);
    }
  }
  // Decode rows of every model at one depth back to back, so that models compared with each
  // other see the same machine load as nearly as possible.
  for (int64_t d : depths)
    for (const auto& m : models)
      benchmark::RegisterBenchmark(("decode/d" + std::to_string(d) + "/" + m->label).c_str(), BM_Decode, m.get(), d)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond)
          ->MinTime(5.0);
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  print_decode_summary(models, depths, reporter.decode_tokens_per_s);
  benchmark::Shutdown();
  return 0;
}

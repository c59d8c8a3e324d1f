// The attention kernel alone, in the 1.1B bench model's head shape (32 query heads, 4 KV
// heads, head_dim 64, f16 cache): milliseconds per call for one prefill chunk of 256 tokens
// and for one decode token, at several context lengths, with and without argmax probes.
//
//   bench_attention [--reps R] [--threads T] [--max-context N] [--cpu-time 1] [--only prefill|decode]
//                   [--layers L] [--isa avx2|avx512] [--kv-type f16|q8_0|both]
//
// --kv-type both times the f16 and the q8_0 cache (the same values, quantized) call after call,
// interleaved, and prints both figures and their ratio per row (the machine's noise hits both).
//
// --isa limits the decode kernels to one instruction set (attention_isa): avx2 runs the 8-lane
// kernel, avx512 (the default where the CPU has it) the key-pair kernel.
//
// --layers L gives each of L layers its own cache and calls them in turn, as a forward pass
// does: with the 1.1B model's 22 the caches (374 MB at 16K) stream from memory instead of
// staying in the last-level cache, which is what decode at long context sees.
//
// --cpu-time 1 reports the process's CPU time per call instead of wall time: on a shared,
// loaded machine that measures the kernel's own work (exact with --threads 1; with more
// threads it also counts time spent waiting at barriers).
// Per layer of the model; a whole forward pass calls it once per layer (22 for the 1.1B).
#include <omp.h>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ops/attention.h"
#include "ops/kv_cache.h"
#include "ops/quant.h"
#include "ops/threads.h"

namespace {

using namespace rhead;

constexpr int kHeads = 32, kKvHeads = 4, kHeadDim = 64;

bool g_cpu_time = false;  // report process CPU time instead of wall time
KernelISA g_isa = best_isa();

double cpu_ms() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median milliseconds of `reps` calls of T queries at positions pos0.. over a cache of
// pos0 + T keys.
struct LayerCache {
  std::vector<uint8_t> k, v;  // [kKvHeads][capacity] rows of kHeadDim values, f16 or q8_0
};

// The bench caches: layers[type][layer]; type 0 f16, 1 q8_0.
using Caches = std::vector<std::vector<LayerCache>>;

// Median ms of each cache type in `types` (indices into `caches`), timed call after call.
std::vector<double> time_calls(int64_t pos0, int64_t T, bool probes, int reps, const Caches& caches,
                               const std::vector<int>& types, int64_t capacity) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> q(static_cast<size_t>(T) * kHeads * kHeadDim), out(q.size());
  for (auto& x : q) x = 2.0f * nd(rng);
  std::vector<int32_t> slots(T, -1), argmax(kHeads);
  std::vector<float> weight(kHeads);
  slots[T - 1] = 0;
  AttentionArgs a;
  a.n_tokens = T;
  a.pos0 = pos0;
  a.n_head = kHeads;
  a.n_kv_head = kKvHeads;
  a.head_dim = kHeadDim;
  a.q = q.data();
  a.kv_head_stride = capacity * kHeadDim;
  a.out = out.data();
  if (probes) {
    a.obs_slot = slots.data();
    a.probes.obs_stride = kHeads;
    a.probes.argmax = argmax.data();
    a.probes.argmax_weight = weight.data();
  }
  std::vector<std::vector<double>> ms(types.size());
  for (int r = -1; r < reps; ++r)  // r = -1: warm-up
    for (size_t x = 0; x < types.size(); ++x) {
      const std::vector<LayerCache>& layers = caches[types[x]];
      a.kv_f16 = types[x] == 0;
      a.kv_q8_0 = types[x] == 1;
      a.k = layers[(r + 1) % layers.size()].k.data();
      a.v = layers[(r + 1) % layers.size()].v.data();
      const double t0 = g_cpu_time ? cpu_ms() : 0;
      const auto w0 = std::chrono::steady_clock::now();
      attention_isa(g_isa, a);
      if (r >= 0)
        ms[x].push_back(g_cpu_time
                            ? cpu_ms() - t0
                            : std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - w0).count());
    }
  std::vector<double> med;
  for (auto& m : ms) med.push_back(median(m));
  return med;
}

}  // namespace

int main(int argc, char** argv) {
  rhead::apply_wait_policy(argv);  // the wait policy rhead itself runs with (ops/threads.h)
  int reps = 5, threads = 0, n_layers = 1;
  int64_t max_context = 16384;
  std::string kv_type = "f16";  // f16, q8_0 or both
  std::string only;             // "prefill" or "decode": run only those rows
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--reps")
      reps = std::atoi(argv[i + 1]);
    else if (flag == "--threads")
      threads = std::atoi(argv[i + 1]);
    else if (flag == "--max-context")
      max_context = std::atoll(argv[i + 1]);
    else if (flag == "--only")
      only = argv[i + 1];
    else if (flag == "--cpu-time")
      g_cpu_time = std::atoi(argv[i + 1]) != 0;
    else if (flag == "--kv-type" && (argv[i + 1] == std::string("f16") || argv[i + 1] == std::string("q8_0") ||
                                     argv[i + 1] == std::string("both")))
      kv_type = argv[i + 1];
    else if (flag == "--layers")
      n_layers = std::max(1, std::atoi(argv[i + 1]));
    else if (flag == "--isa" && (argv[i + 1] == std::string("avx2") || argv[i + 1] == std::string("avx512")))
      g_isa = argv[i + 1] == std::string("avx2") ? KernelISA::AVX2 : KernelISA::AVX512;
    else {
      std::fprintf(stderr, "bench_attention: unknown flag %s\n", argv[i]);
      return 1;
    }
  }
  if (threads > 0) omp_set_num_threads(threads);
  if (!cpu_has_isa(g_isa)) {
    std::fprintf(stderr, "bench_attention: this CPU lacks %s\n", isa_name(g_isa));
    return 1;
  }
  const int64_t capacity = max_context + 256;
  std::vector<int> types;
  if (kv_type != "q8_0") types.push_back(0);
  if (kv_type != "f16") types.push_back(1);
  Caches caches(2);
  {
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const int64_t rows = static_cast<int64_t>(kKvHeads) * capacity;
    std::vector<float> kf(static_cast<size_t>(rows) * kHeadDim), vf(kf.size());
    for (auto& x : kf) x = nd(rng);
    for (auto& x : vf) x = nd(rng);
    for (int t : types) {
      LayerCache c;
      const int64_t row_bytes = kv_row_bytes(t == 0 ? KvType::f16 : KvType::q8_0, kHeadDim);
      c.k.resize(static_cast<size_t>(rows * row_bytes));
      c.v.resize(c.k.size());
      for (int64_t r = 0; r < rows; ++r)
        if (t == 0) {
          for (int d = 0; d < kHeadDim; ++d) {
            const uint16_t hk = f32_to_f16(kf[r * kHeadDim + d]), hv = f32_to_f16(vf[r * kHeadDim + d]);
            std::memcpy(&c.k[(r * kHeadDim + d) * 2], &hk, 2);
            std::memcpy(&c.v[(r * kHeadDim + d) * 2], &hv, 2);
          }
        } else {
          kv_quantize_row_q8_0(kf.data() + r * kHeadDim, kHeadDim, c.k.data() + r * row_bytes);
          kv_quantize_row_q8_0(vf.data() + r * kHeadDim, kHeadDim, c.v.data() + r * row_bytes);
        }
      caches[t].assign(static_cast<size_t>(n_layers), c);  // same values, own memory per layer
    }
  }
  std::printf(
      "threads %d, heads %d/%d, head_dim %d, %s cache, %d layer cache%s, %s kernels, median of %d calls (ms per "
      "layer)\n",
      omp_get_max_threads(), kHeads, kKvHeads, kHeadDim, kv_type == "both" ? "f16 and q8_0" : kv_type.c_str(), n_layers,
      n_layers == 1 ? "" : "s", isa_name(g_isa), reps);
  const std::string tn[2] = {"f16", "q8_0"};
  std::printf("%-8s %-5s %8s %10s %12s %14s\n", "call", "kv", "context", "ms", "ms+argmax", "GFLOP/s");
  for (int64_t ctx : {int64_t{512}, int64_t{4096}, int64_t{16384}}) {
    if (ctx > max_context || only == "decode") continue;
    // Prefill: the last chunk of 256 tokens ending at ctx.
    const int64_t T = 256, pos0 = ctx - T;
    const auto a = time_calls(pos0, T, false, reps, caches, types, capacity),
               b = time_calls(pos0, T, true, reps, caches, types, capacity);
    // Score and mix: 4 flops per (query head, visible key, dim).
    const double flops = 4.0 * kHeads * kHeadDim * (static_cast<double>(T) * pos0 + T * (T + 1) / 2.0);
    for (size_t x = 0; x < types.size(); ++x)
      std::printf("%-8s %-5s %8lld %10.3f %12.3f %14.2f\n", "prefill", tn[types[x]].c_str(),
                  static_cast<long long>(ctx), a[x], b[x], flops / a[x] / 1e6);
    if (types.size() == 2)
      std::printf("%-8s %-5s %8lld %10.2f %12.2f   (f16 ms / q8_0 ms)\n", "prefill", "ratio",
                  static_cast<long long>(ctx), a[0] / a[1], b[0] / b[1]);
  }
  for (int64_t ctx : {int64_t{512}, int64_t{4096}, int64_t{16384}}) {
    if (ctx > max_context || only == "prefill") continue;
    const auto a = time_calls(ctx - 1, 1, false, reps, caches, types, capacity),
               b = time_calls(ctx - 1, 1, true, reps, caches, types, capacity);
    for (size_t x = 0; x < types.size(); ++x) {
      // K and V bytes read.
      const double bytes = 2.0 * kKvHeads * ctx * kv_row_bytes(types[x] == 0 ? KvType::f16 : KvType::q8_0, kHeadDim);
      std::printf("%-8s %-5s %8lld %10.3f %12.3f %11.2f GB/s\n", "decode", tn[types[x]].c_str(),
                  static_cast<long long>(ctx), a[x], b[x], bytes / a[x] / 1e6);
    }
    if (types.size() == 2)
      std::printf("%-8s %-5s %8lld %10.2f %12.2f   (f16 ms / q8_0 ms)\n", "decode", "ratio",
                  static_cast<long long>(ctx), a[0] / a[1], b[0] / b[1]);
  }
  return 0;
}

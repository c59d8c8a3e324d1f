// The attention kernel alone, in the 1.1B bench model's head shape (32 query heads, 4 KV
// heads, head_dim 64, f16 cache): milliseconds per call for one prefill chunk of 256 tokens
// and for one decode token, at several context lengths, with and without argmax probes.
//
//   bench_attention [--reps R] [--threads T] [--max-context N] [--cpu-time 1] [--only prefill|decode]
//                   [--layers L] [--isa avx2|avx512]
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
  std::vector<uint16_t> k, v;  // [kKvHeads][capacity][kHeadDim] f16
};

double time_call(int64_t pos0, int64_t T, bool probes, int reps, const std::vector<LayerCache>& layers,
                 int64_t capacity) {
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
  a.k = layers[0].k.data();
  a.v = layers[0].v.data();
  a.kv_f16 = true;
  a.kv_head_stride = capacity * kHeadDim;
  a.out = out.data();
  if (probes) {
    a.obs_slot = slots.data();
    a.probes.obs_stride = kHeads;
    a.probes.argmax = argmax.data();
    a.probes.argmax_weight = weight.data();
  }
  std::vector<double> ms;
  attention_isa(g_isa, a);  // warm-up
  for (int r = 0; r < reps; ++r) {
    a.k = layers[(r + 1) % layers.size()].k.data();
    a.v = layers[(r + 1) % layers.size()].v.data();
    const double t0 = g_cpu_time ? cpu_ms() : 0;
    const auto w0 = std::chrono::steady_clock::now();
    attention_isa(g_isa, a);
    ms.push_back(g_cpu_time ? cpu_ms() - t0
                            : std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - w0).count());
  }
  return median(ms);
}

}  // namespace

int main(int argc, char** argv) {
  rhead::apply_wait_policy(argv);  // the wait policy rhead itself runs with (ops/threads.h)
  int reps = 5, threads = 0, n_layers = 1;
  int64_t max_context = 16384;
  std::string only;  // "prefill" or "decode": run only those rows
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--reps") reps = std::atoi(argv[i + 1]);
    else if (flag == "--threads") threads = std::atoi(argv[i + 1]);
    else if (flag == "--max-context") max_context = std::atoll(argv[i + 1]);
    else if (flag == "--only") only = argv[i + 1];
    else if (flag == "--cpu-time") g_cpu_time = std::atoi(argv[i + 1]) != 0;
    else if (flag == "--layers") n_layers = std::max(1, std::atoi(argv[i + 1]));
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
  std::vector<LayerCache> layers(static_cast<size_t>(n_layers));
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  layers[0].k.resize(static_cast<size_t>(kKvHeads) * capacity * kHeadDim);
  layers[0].v.resize(layers[0].k.size());
  for (auto& x : layers[0].k) x = f32_to_f16(nd(rng));
  for (auto& x : layers[0].v) x = f32_to_f16(nd(rng));
  for (size_t l = 1; l < layers.size(); ++l) layers[l] = layers[0];  // same values, own memory
  std::printf("threads %d, heads %d/%d, head_dim %d, f16 cache, %d layer cache%s, %s kernels, median of %d calls (ms per layer)\n",
              omp_get_max_threads(), kHeads, kKvHeads, kHeadDim, n_layers, n_layers == 1 ? "" : "s", isa_name(g_isa), reps);
  std::printf("%-8s %8s %10s %12s %14s\n", "call", "context", "ms", "ms+argmax", "GFLOP/s");
  for (int64_t ctx : {int64_t{512}, int64_t{4096}, int64_t{16384}}) {
    if (ctx > max_context || only == "decode") continue;
    // Prefill: the last chunk of 256 tokens ending at ctx.
    const int64_t T = 256, pos0 = ctx - T;
    const double a = time_call(pos0, T, false, reps, layers, capacity), b = time_call(pos0, T, true, reps, layers, capacity);
    // Score and mix: 4 flops per (query head, visible key, dim).
    const double flops = 4.0 * kHeads * kHeadDim * (static_cast<double>(T) * pos0 + T * (T + 1) / 2.0);
    std::printf("%-8s %8lld %10.3f %12.3f %14.2f\n", "prefill", static_cast<long long>(ctx), a, b, flops / a / 1e6);
  }
  for (int64_t ctx : {int64_t{512}, int64_t{4096}, int64_t{16384}}) {
    if (ctx > max_context || only == "prefill") continue;
    const double a = time_call(ctx - 1, 1, false, reps, layers, capacity), b = time_call(ctx - 1, 1, true, reps, layers, capacity);
    const double bytes = 2.0 * kKvHeads * ctx * kHeadDim * 2;  // K and V in f16
    std::printf("%-8s %8lld %10.3f %12.3f %11.2f GB/s\n", "decode", static_cast<long long>(ctx), a, b, bytes / a / 1e6);
  }
  return 0;
}

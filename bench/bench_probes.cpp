// What probes and masks cost.
//
//   bench_probes [MODEL.gguf] [--prompt P] [--tokens N] [--reps R] [--threads T]
//
// 1. Decode: a P-token random prompt is prefilled once; then, R times in turn for each
//    configuration, the session is truncated back to the prompt and the same N tokens are
//    decoded one step at a time (Session::forward with decode = true):
//      none     no probe request, no mask
//      argmax   argmax position and weight of every (layer, query head)
//      all      argmax + top-5 + span mass + sink mass
//      mask50   50 query heads drawn with a fixed seed, uniform mode, decode phase
//    Reported: median and best tokens/s over the R rounds, and the cost relative to "none".
// 2. The attention kernel alone, for the model's head shape at contexts 512..4096, one
//    decode query, with and without argmax probes (probes are computed in the working row,
//    so this is where their cost would show).
//
// MODEL defaults to /tmp/bench-1b-q8.gguf, written by
//   make_bench_model /tmp/bench-1b-q8.gguf --type q8_0
// (TinyLlama-1.1B's shape: 22 layers x 32 query heads = 704 heads, 4 KV heads).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "io/error.h"
#include "model/loader.h"
#include "model/probes.h"
#include "model/session.h"
#include "ops/attention.h"
#include "ops/quant.h"
#include "ops/threads.h"

namespace {

using namespace rhead;
using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Config {
  std::string name;
  const ProbeRequest* probes;
  const HeadMask* mask;
};

void bench_decode(const LoadedModel& lm, int64_t n_prompt, int n_tokens, int reps) {
  const ModelConfig& c = lm.model->config;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> tok(3, c.n_vocab - 1);
  std::vector<int32_t> prompt(static_cast<size_t>(n_prompt)), fed(static_cast<size_t>(n_tokens));
  for (auto& t : prompt) t = tok(rng);
  for (auto& t : fed) t = tok(rng);

  SessionOptions so;
  so.n_ctx = n_prompt + n_tokens + 1;
  Session session(lm.model, so);
  auto t0 = Clock::now();
  session.forward(prompt);
  const double prefill_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("prefill: %lld tokens in %.2f s (%.1f tokens/s)\n", static_cast<long long>(n_prompt), prefill_s,
              n_prompt / prefill_s);

  ProbeRequest argmax;
  ProbeRequest all;
  all.top_k = 5;
  all.span_begin = n_prompt / 4;
  all.span_end = n_prompt / 2;
  all.sink = true;
  HeadMask mask(c.n_layer, c.n_head);
  std::mt19937 pick(1234);
  const int n_mask = std::min(50, c.n_layer * c.n_head);
  while (mask.count() < n_mask) mask.add(static_cast<int>(pick() % c.n_layer), static_cast<int>(pick() % c.n_head));
  mask.mode = MaskMode::uniform;
  mask.phase = MaskPhase::decode;

  const std::vector<Config> configs = {
      {"none", nullptr, nullptr},
      {"argmax", &argmax, nullptr},
      {"all", &all, nullptr},
      {"mask" + std::to_string(n_mask), nullptr, &mask},
  };
  std::vector<std::vector<double>> tps(configs.size());
  ProbeRecord rec;
  for (int r = -1; r < reps; ++r) {  // round -1 warms caches and is not counted
    for (size_t k = 0; k < configs.size(); ++k) {
      session.truncate(n_prompt);
      ForwardOptions fo;
      fo.decode = true;
      fo.probes = configs[k].probes;
      fo.probe_out = configs[k].probes ? &rec : nullptr;
      fo.mask = configs[k].mask;
      const auto start = Clock::now();
      for (int i = 0; i < n_tokens; ++i) session.forward(std::span<const int32_t>(&fed[i], 1), fo);
      const double s = std::chrono::duration<double>(Clock::now() - start).count();
      if (r >= 0) tps[k].push_back(n_tokens / s);
    }
  }
  std::printf("\ndecode, %d tokens after a %lld-token prompt, %d interleaved rounds (median and best round):\n",
              n_tokens, static_cast<long long>(n_prompt), reps);
  const double base = median(tps[0]), base_best = *std::max_element(tps[0].begin(), tps[0].end());
  for (size_t k = 0; k < configs.size(); ++k) {
    const double m = median(tps[k]), best = *std::max_element(tps[k].begin(), tps[k].end());
    std::printf(
        "  %-8s median %7.2f tokens/s (%6.2f ms/token, cost vs none %+6.2f%%)   best %7.2f tokens/s (cost %+6.2f%%)\n",
        configs[k].name.c_str(), m, 1e3 / m, (base / m - 1.0) * 100.0, best, (base_best / best - 1.0) * 100.0);
  }
}

void bench_kernel(const ModelConfig& c, int reps) {
  std::printf("\nattention kernel, one decode query, %d query heads / %d KV heads, head_dim %d (f16 KV):\n", c.n_head,
              c.n_kv_head, c.head_dim);
  for (int64_t n_ctx : {512, 1024, 2048, 4096}) {
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> q(static_cast<size_t>(c.n_head) * c.head_dim), out(q.size());
    for (auto& x : q) x = nd(rng);
    std::vector<uint16_t> k(static_cast<size_t>(c.n_kv_head) * n_ctx * c.head_dim), v(k.size());
    for (auto& x : k) x = f32_to_f16(nd(rng));
    for (auto& x : v) x = f32_to_f16(nd(rng));
    std::vector<int32_t> am(c.n_head);
    std::vector<float> aw(c.n_head);
    const int32_t slot = 0;
    AttentionArgs a;
    a.n_tokens = 1;
    a.pos0 = n_ctx - 1;
    a.n_head = c.n_head;
    a.n_kv_head = c.n_kv_head;
    a.head_dim = c.head_dim;
    a.q = q.data();
    a.k = k.data();
    a.v = v.data();
    a.kv_head_stride = n_ctx * c.head_dim;
    a.out = out.data();
    AttentionArgs p = a;
    p.obs_slot = &slot;
    p.probes.obs_stride = c.n_head;
    p.probes.argmax = am.data();
    p.probes.argmax_weight = aw.data();
    const int iters = static_cast<int>(std::max<int64_t>(50, 1000000 / n_ctx));
    std::vector<double> t_plain, t_probe;
    for (int r = -1; r < reps; ++r) {
      for (int which = 0; which < 2; ++which) {
        const auto start = Clock::now();
        for (int i = 0; i < iters; ++i) attention(which ? p : a);
        const double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count() / iters;
        if (r >= 0) (which ? t_probe : t_plain).push_back(us);
      }
    }
    const double a0 = median(t_plain), a1 = median(t_probe);
    std::printf("  ctx %5lld: %8.1f us plain, %8.1f us with argmax probes (%+.2f%%)\n", static_cast<long long>(n_ctx),
                a0, a1, (a1 / a0 - 1.0) * 100.0);
  }
}

int run(int argc, char** argv) {
  std::string path = "/tmp/bench-1b-q8.gguf";
  int64_t n_prompt = 256;
  int n_tokens = 16, reps = 5, threads = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) fail("bench_probes", a + " needs a value");
      return argv[++i];
    };
    if (a == "--prompt")
      n_prompt = std::stoll(value());
    else if (a == "--tokens")
      n_tokens = std::stoi(value());
    else if (a == "--reps")
      reps = std::stoi(value());
    else if (a == "--threads")
      threads = std::stoi(value());
    else if (a == "-h" || a == "--help") {
      std::printf("usage: bench_probes [MODEL.gguf] [--prompt P] [--tokens N] [--reps R] [--threads T]\n");
      return 0;
    } else if (!a.empty() && a[0] == '-')
      fail("bench_probes", "unknown option " + a);
    else
      path = a;
  }
  if (threads > 0) omp_set_num_threads(threads);
  if (!std::filesystem::exists(path))
    fail(path, "no such model (write one with: make_bench_model /tmp/bench-1b-q8.gguf --type q8_0)");
  LoadedModel lm = load_model(path);
  const ModelConfig& c = lm.model->config;
  std::printf("model: %s, %d layers x %d query heads = %d heads (%d KV heads), %d threads\n", path.c_str(), c.n_layer,
              c.n_head, c.n_layer * c.n_head, c.n_kv_head, omp_get_max_threads());
  bench_decode(lm, n_prompt, n_tokens, reps);
  bench_kernel(c, reps);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  rhead::apply_wait_policy(argv);  // the wait policy rhead itself runs with (ops/threads.h)
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}

// Detection throughput on niah-tiny: the README grid (essays, 3 needle sets, lengths
// 300:500:5, 10 depths = 150 tests) run through NiahRunner in execution order, with and
// without prefix reuse. Reports tests per minute and the share of test time spent in
// prefill, decode (model steps) and scoring (copy rule, ROUGE gate), from TestResult's
// timing fields. The rest ("other") is prompt building and bookkeeping.
// Each configuration runs with every core (OpenMP default) and with one thread: on a model
// this small, threading overhead can outweigh the work.
// RHEAD_BENCH_DETECT_LENGTHS (e.g. "300:500:2") shrinks the grid for a quick look.
// RHEAD_BENCH_DETECT_MODEL=PATH.gguf adds the same grid on that model (for example the 1.1B
// bench model of make_bench_model, with RHEAD_BENCH_DETECT_LENGTHS=1000:8000:2 and
// RHEAD_BENCH_DETECT_DEPTHS=1 to keep it to minutes); RHEAD_BENCH_DETECT_DEPTHS sets the
// number of depths (default 10).
// detect_grid_all_methods runs every detector of `detect --methods` beside copy: qrhead and
// lookback in the NIAH pass and the synthetic detectors (4 sequences, once per grid), timed
// in the same wall clock; compare its "seconds" with detect_grid's of the same configuration in the same run.
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <omp.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "model/loader.h"
#include "experiments/runner.h"
#include "experiments/synthetic_heads.h"
#include "ops/threads.h"

namespace {

using namespace rhead;

const std::string kShared = RHEAD_SHARED_DIR;

const LoadedModel* niah_tiny(const std::string& rel) {
  static std::map<std::string, LoadedModel> loaded;
  const std::string path = rel.starts_with("/") ? rel : kShared + "/models/niah-tiny/" + rel;
  if (!std::filesystem::exists(path)) return nullptr;
  auto it = loaded.find(path);
  if (it == loaded.end()) it = loaded.emplace(path, load_model(path)).first;
  return &it->second;
}

void run_grid(benchmark::State& state, const std::string& model_rel, bool prefix_reuse, int threads, bool all_methods) {
  static const int default_threads = omp_get_max_threads();
  const int n_threads = threads > 0 ? threads : default_threads;
  omp_set_num_threads(n_threads);
  openblas_set_num_threads(n_threads);
  const LoadedModel* lm = niah_tiny(model_rel);
  const std::string needles = kShared + "/models/niah-tiny/needles.jsonl";
  const std::string haystack = kShared + "/data/haystack/paul_graham_essays";
  if (!lm || !std::filesystem::exists(needles) || !std::filesystem::is_directory(haystack)) {
    state.SkipWithError("missing niah-tiny model, needles or essays under RHEAD_SHARED_DIR");
    return;
  }
  NiahRunConfig c;
  c.needle_sets = read_needle_sets(needles);
  c.default_haystack_dir = haystack;
  const char* lengths = std::getenv("RHEAD_BENCH_DETECT_LENGTHS");
  c.grid.lengths = parse_lengths(lengths ? lengths : "300:500:5");
  const char* depths = std::getenv("RHEAD_BENCH_DETECT_DEPTHS");
  c.grid.depths = depths_from_count(depths ? std::atoi(depths) : 10);
  c.format.base_template = "{context}\nQuestion: {question}\nAnswer:";
  c.prefix_reuse = prefix_reuse;
  // RHEAD_BENCH_DETECT_METHODS (a --methods list) narrows the methods of the all-methods runs.
  const char* methods_env = std::getenv("RHEAD_BENCH_DETECT_METHODS");
  const DetectMethods methods =
      parse_detect_methods(methods_env ? methods_env : "copy,qrhead,lookback,previous-token,duplicate-token,induction");
  c.qrhead = all_methods && methods.qrhead;
  c.lookback = all_methods && methods.lookback;

  double prefill = 0, decode = 0, scoring = 0, test_seconds = 0, wall = 0;
  int64_t tests = 0, counted = 0, prompt_tokens = 0, reused = 0, generated = 0;
  for (auto _ : state) {
    NiahRunner runner(*lm, SessionOptions{}, c);
    // execution_order builds every prompt once, so tokenizing the haystacks is not timed.
    const auto order = runner.execution_order(runner.tasks());
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& task : order) {
      const TestResult r = runner.run(task);
      prefill += r.prefill_seconds;
      decode += r.decode_seconds;
      scoring += r.scoring_seconds;
      test_seconds += r.seconds;
      prompt_tokens += r.prompt_tokens;
      generated += r.generated_tokens;
      reused += r.reused_tokens;
      counted += r.counted;
      ++tests;
    }
    if (all_methods && !methods.synthetic.empty()) detect_synthetic_heads(*lm, methods.synthetic, SyntheticOptions{});
    wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  state.counters["tests"] = static_cast<double>(tests) / state.iterations();
  state.counters["tests_per_min"] = 60.0 * static_cast<double>(tests) / wall;
  state.counters["accuracy_%"] = 100.0 * static_cast<double>(counted) / static_cast<double>(tests);
  state.counters["prefill_%"] = 100.0 * prefill / test_seconds;
  state.counters["decode_%"] = 100.0 * decode / test_seconds;
  state.counters["scoring_%"] = 100.0 * scoring / test_seconds;
  state.counters["other_%"] = 100.0 * (test_seconds - prefill - decode - scoring) / test_seconds;
  state.counters["reused_tok_%"] = 100.0 * static_cast<double>(reused) / static_cast<double>(prompt_tokens);
  state.counters["gen_tok/test"] = static_cast<double>(generated) / static_cast<double>(tests);
  state.counters["threads"] = n_threads;
  state.counters["seconds"] = wall / static_cast<double>(state.iterations());
}

void detect_grid(benchmark::State& state, const std::string& model_rel, bool prefix_reuse, int threads) {
  run_grid(state, model_rel, prefix_reuse, threads, false);
}

void detect_grid_all_methods(benchmark::State& state, const std::string& model_rel, bool prefix_reuse, int threads) {
  run_grid(state, model_rel, prefix_reuse, threads, true);
}

}  // namespace

BENCHMARK_CAPTURE(detect_grid, gguf_f32_prefix_reuse_all_threads, std::string("niah-tiny-f32.gguf"), true, 0)
    ->Unit(benchmark::kSecond)
    ->Iterations(1)
    ->UseRealTime();
BENCHMARK_CAPTURE(detect_grid, gguf_f32_prefix_reuse_1_thread, std::string("niah-tiny-f32.gguf"), true, 1)
    ->Unit(benchmark::kSecond)
    ->Iterations(1)
    ->UseRealTime();
BENCHMARK_CAPTURE(detect_grid_all_methods, gguf_f32_prefix_reuse_all_threads, std::string("niah-tiny-f32.gguf"), true,
                  0)
    ->Unit(benchmark::kSecond)
    ->Iterations(1)
    ->UseRealTime();
BENCHMARK_CAPTURE(detect_grid_all_methods, gguf_f32_prefix_reuse_1_thread, std::string("niah-tiny-f32.gguf"), true, 1)
    ->Unit(benchmark::kSecond)
    ->Iterations(1)
    ->UseRealTime();
BENCHMARK_CAPTURE(detect_grid, gguf_f32_no_reuse_all_threads, std::string("niah-tiny-f32.gguf"), false, 0)
    ->Unit(benchmark::kSecond)
    ->Iterations(1)
    ->UseRealTime();
BENCHMARK_CAPTURE(detect_grid, gguf_f32_no_reuse_1_thread, std::string("niah-tiny-f32.gguf"), false, 1)
    ->Unit(benchmark::kSecond)
    ->Iterations(1)
    ->UseRealTime();
BENCHMARK_CAPTURE(detect_grid, hf_f32_prefix_reuse_all_threads, std::string("hf-f32"), true, 0)
    ->Unit(benchmark::kSecond)
    ->Iterations(1)
    ->UseRealTime();
BENCHMARK_CAPTURE(detect_grid, hf_f32_prefix_reuse_1_thread, std::string("hf-f32"), true, 1)
    ->Unit(benchmark::kSecond)
    ->Iterations(1)
    ->UseRealTime();
BENCHMARK_CAPTURE(detect_grid, hf_f32_no_reuse_all_threads, std::string("hf-f32"), false, 0)
    ->Unit(benchmark::kSecond)
    ->Iterations(1)
    ->UseRealTime();
BENCHMARK_CAPTURE(detect_grid, hf_f32_no_reuse_1_thread, std::string("hf-f32"), false, 1)
    ->Unit(benchmark::kSecond)
    ->Iterations(1)
    ->UseRealTime();

int main(int argc, char** argv) {
  rhead::apply_wait_policy(argv);  // the wait policy rhead itself runs with (ops/threads.h)
  if (const char* model = std::getenv("RHEAD_BENCH_DETECT_MODEL"))
    benchmark::RegisterBenchmark("detect_grid/model_prefix_reuse_all_threads", detect_grid, std::string(model), true, 0)
        ->Unit(benchmark::kSecond)
        ->Iterations(1)
        ->UseRealTime();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

// The setup every front end of rhead shares (the `rhead` commands in cli/ and the Python module
// in python/): how a model is loaded from its options, how the NIAH options become a runner
// config and a run record, the shard grammar, the progress line, and the whole detect run.
// A front end parses its own arguments into these structs, calls these functions and prints.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "conditions/options.h"
#include "io/run_dir.h"
#include "model/loader.h"
#include "model/session.h"
#include "experiments/causal.h"
#include "experiments/detect.h"
#include "experiments/runner.h"
#include "experiments/synthetic_heads.h"

namespace rhead {

// How to load a model and size its sessions.
struct ModelOptions {
  std::string model;            // .gguf, HF dir, llama2.c .bin, or builtin:NAME
  std::string tokenizer;        // tokenizer file for llama2.c .bin models
  int64_t n_ctx = 0;            // KV cache capacity in tokens (0: the model's context length)
  std::string kv_type = "f16";  // KV cache element type: f16, f32 or q8_0
  int threads = 0;              // OpenMP threads (0: all cores)
  int64_t prefill_chunk = 0;    // prefill chunk size in tokens (0: the device's default)
  std::string device;           // cpu | cuda (empty: cuda when a GPU is present, else cpu)
};

// Sets the threads, then loads. Errors (rhead::Error) name the model path.
LoadedModel load_model_from_options(const ModelOptions& o);
// The fingerprint entries of the model a run uses: its path, the identity of its file (size and
// a digest of its header and tensor table, io/file_identity.h), the tokenizer file's content,
// and the options that change results (kv_type, the device).
nlohmann::json model_fingerprint(const ModelOptions& o, const LoadedModel& lm);
// A data file or folder in a fingerprint: its path and a digest of its content, or
// `builtin_name` when `path` is empty.
nlohmann::json data_fingerprint(const std::string& path, const std::string& builtin_name);

// Error unless kv_type is f16 / f32 / q8_0 and device is empty, cpu or cuda.
SessionOptions session_options(const ModelOptions& o);

enum class DefaultNeedles { builtin_facts, sandwich };

// The NIAH grid, prompt and output options of detect and niah.
struct NiahOptions {
  ModelOptions model;
  std::string needles;   // JSONL; empty: built-in
  std::string haystack;  // folder of .txt; empty: built-in filler
  std::string lengths = "1000:50000:20";
  int depths = 10;
  std::string chat_template;  // force a chat template by name
  bool no_chat = false;
  std::string prompt_template;  // {context} and {question}
  int64_t buffer = 200;
  int max_new_tokens = 50;
  bool no_prefix_reuse = false;
  std::string output;
  std::string shard = "0/1";
  bool grow = false;  // the folder's run may have had a smaller grid
  bool quiet = false;
};

// The prompt format chosen by a chat template name / no_chat / a prompt template: a named chat
// template, else the model's own chat template (unless no_chat or a prompt template is
// given), else the base prompt (builtin:induction: its own template).
PromptFormat prompt_format_from_options(const std::string& chat_template, bool no_chat,
                                        const std::string& prompt_template, const LoadedModel& lm);

// Builds the runner config from the options; `settings` receives a record of every choice
// (with a "fingerprint" sub-object of those that must match to resume a run).
NiahRunConfig make_niah_config(const NiahOptions& o, const LoadedModel& model, DefaultNeedles defaults,
                               nlohmann::json& settings);

// "I/N" (or "auto": this task of a Slurm job array) -> shard I of N.
Shard parse_shard(const std::string& spec);
// The run folder of the options -o OUTPUT --shard SHARD [--grow].
RunFolderOptions run_folder(const std::string& output, const std::string& shard, bool grow);

// A one-line progress display: tests done, ETA, running accuracy. Written to stderr unless a
// writer is given; `tty` redraws one line in place, else a line at most every 10 s.
class ProgressBar {
 public:
  explicit ProgressBar(bool enabled);
  ProgressBar(bool enabled, bool tty, std::function<void(const std::string&)> write);
  void update(int done, int total, int passed, double elapsed_s, const std::string& label);
  void finish();

 private:
  bool enabled_, tty_;
  std::function<void(const std::string&)> write_;
  double last_print_ = -1;
};

// The detect run of `rhead detect` and rhead.detect(): the grid of `o` on `lm`, written to
// (and resumed from) o.output, shard o.shard; `merge_into` as DetectOptions::merge_into.
// `progress` is called after every test (it may throw to stop the run between tests; every
// finished test is on disk and a rerun resumes).
// `d` carries what the options do not (merge_into, until_stable, stable_k, the callbacks); its
// output directory, shard and settings come from `o`.
DetectSummary run_detect_from_options(const LoadedModel& lm, const NiahOptions& o, DetectOptions d);
// The same with `--methods` (experiments/synthetic_heads.h parse_detect_methods): qrhead and
// lookback in the NIAH pass, the synthetic detectors on their own sequences after it; the
// agreement of every pair of methods goes to summary.json ("methods") and into `agreement`
// (null when no method beyond copy ran).
DetectSummary run_detect_with_methods(const LoadedModel& lm, const NiahOptions& o, DetectOptions d,
                                      const std::string& methods, nlohmann::json* agreement);

// The conditions and heads of `rhead niah` and rhead.niah() beside the NIAH options.
struct NiahCausalRunOptions {
  MaskOptions masks;
  KvOptions kv;
  bool baseline = false;   // also run the unmasked model
  int sink_heads = 5;      // record the first-token mass of this many top retrieval heads (needs scores)
  int support_heads = 10;  // support_share counts copies by this many top heads of scores (every head without)
};

// Calibration text of mask mode mean for the NIAH grid: the haystack's first tokens (at most
// 1024, at most the model's context).
std::vector<int32_t> haystack_calibration_tokens(const LoadedModel& lm, const std::string& haystack_dir);

// The run of `rhead niah` and rhead.niah(): every mask x KV condition of `c` over the grid of
// `o` (default needle: the sandwich needle), written to (and resumed from) o.output.
// `options_out` receives the options the run used (sink and support heads, sweeps) for the
// caller's printout. `progress` as in run_detect_from_options.
NiahCausalSummary run_niah_from_options(const LoadedModel& lm, const NiahOptions& o, const NiahCausalRunOptions& c,
                                        const std::function<void(int done, int total, const std::string& mask,
                                                                 const TestResult& last, double elapsed_s)>& progress,
                                        NiahCausalOptions* options_out = nullptr);

}  // namespace rhead

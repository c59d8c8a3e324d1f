// Causal experiments on retrieval heads: mask settings (one mask, or a top-K / random-K
// sweep), mean-ablation calibration, and `rhead niah`, the NIAH grid under each mask with
// reference result fields, error taxonomy, resume, shards, heatmaps and the sweep plot.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/score_map.h"
#include "support/explain.h"
#include "io/run_dir.h"
#include "model/loader.h"
#include "model/session.h"
#include "model/heads.h"
#include "conditions/kv_conditions.h"
#include "conditions/masks.h"
#include "records/niah_records.h"
#include "experiments/experiment.h"
#include "experiments/runner.h"

namespace rhead {

// --- rhead niah ---

struct NiahCausalOptions : RunFolderOptions {
  nlohmann::json settings;            // recorded in run.json; settings["fingerprint"] must match to resume
  std::vector<MaskSetting> masks;     // run in this order
  bool sweep = false;                 // write sweep.json and the sweep plot
  bool kv_sweep = false;              // write kv_sweep.{json,tsv,png,svg}
  std::vector<HeadId> sink_heads;     // top retrieval heads whose first-token mass is recorded
  std::vector<HeadId> support_heads;  // heads whose copies support an answer token (support_share)
  std::function<void(int done, int total, const std::string& mask, const TestResult& last, double elapsed_s)> progress;
};

// Per-mask summary of a niah directory.
struct MaskOutcome {
  std::string label;
  nlohmann::json mask;  // MaskSetting::to_json of the condition
  int tests = 0;
  int passed = 0;  // score > kPassScore
  double mean_score = 0;
  std::map<std::string, int> errors;  // incomplete / hallucination / wrong_extraction -> tests
  // KV cache kept, mean over tests (1 without a policy): per query head and per KV head.
  double query_kept_fraction = 1, kv_kept_fraction = 1;
  // Mean first-token attention mass of the top retrieval heads: over all tests, and by
  // outcome ("none" for passed tests, else the error kind). -1 when not recorded.
  double sink_mass = -1;
  std::map<std::string, double> sink_mass_by_outcome;
  // support_share (experiments/explain.h) of passed and failed tests, and its AUROC for
  // telling them apart (empty when not recorded).
  SupportSummary support;
};

struct NiahCausalSummary {
  nlohmann::json model = nlohmann::json::object();
  nlohmann::json settings = nlohmann::json::object();
  std::vector<MaskOutcome> masks;  // by kind (none, top, random, heads), K, seed
  nlohmann::json sweep;            // {"top": [[K, mean]], "random": [[K, mean]]} or null
  int64_t prefilled_tokens = -1;   // tokens prefilled by this process's run (-1: not run here)
  nlohmann::json to_json() const;  // summary.json
};

// The results.jsonl line of grid test `r` run under `mask` on `model` (its file) with
// `needle`: the reference NIAH fields and ours (niah/niah_records.h), its KV fields for a
// cache of `head_dim` values a row stored as `kv_type`, at the test's prompt length.
NiahLine niah_line(const TestResult& r, const MaskSetting& mask, const std::string& model, const std::string& needle,
                   int head_dim, KvType kv_type);

// Summary of result lines (every mask found in them).
NiahCausalSummary summarize_niah_lines(const std::vector<NiahLine>& lines, bool sweep);

// Sweep series from per-mask outcomes: top (with K = 0 from "none") and random (mean over
// seeds at each K, with K = 0 from "none"). Null when there is no top or random outcome.
nlohmann::json sweep_json(const std::vector<MaskOutcome>& outcomes);

// Runs (the shard of) every mask x grid test not yet in OUT/results.jsonl, then rebuilds
// the outputs. The runner config's mask and sink heads are set per condition.
NiahCausalSummary run_niah_causal(const LoadedModel& model, const SessionOptions& session, NiahRunConfig base,
                                  const NiahCausalOptions& options);

// Rebuilds summary.json, sweep.json, the KV sweep files and the figures of a niah run
// directory from its lines.
NiahCausalSummary write_niah_outputs(const RunDir& dir);

// Joins niah shard directories into `out_dir`.
NiahCausalSummary merge_niah_runs(const std::vector<std::string>& shard_dirs, const std::string& out_dir);

// The printed table: per mask, mean score, accuracy, error kinds, sink mass; the sweep.
std::string format_niah_summary(const NiahCausalSummary& s);

// Writes heatmap_<mask>.{png,svg} for every mask in results.jsonl of `dir` and
// sweep.{png,svg} when sweep.json exists. Returns the paths written.
std::vector<std::string> write_niah_figures(const std::string& dir, const std::string& title_prefix);

}  // namespace rhead

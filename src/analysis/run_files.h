// Readers for the output directories of `rhead detect` and `rhead niah`:
// results.jsonl (one finished test a line), summary.json, head_score.json, sweep.json.
// Each reader validates field types and throws rhead::Error "path:line: problem".
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/head_stats.h"
#include "analysis/score_map.h"
#include "records/detect_summary.h"
#include "records/niah_records.h"
#include "records/results.h"

namespace rhead::analysis {

// Model description of a niah summary (all fields optional in the file).
struct ModelInfo {
  std::string path;
  std::string architecture;
  int n_layer = 0, n_head = 0, n_kv_head = 0, head_dim = 0, n_vocab = 0, n_ctx = 0;
  nlohmann::json raw = nlohmann::json::object();  // the whole "model" object, for display
};

// A detect results.jsonl and summary.json, read with the writers' own records
// (niah/results.h TestResult, niah/detect.h DetectSummary).
std::vector<TestResult> read_detect_results(const std::string& path);
DetectSummary read_detect_summary(const std::string& path);

// Rebuilds per-head lists from results.jsonl: every counted test adds one entry per
// head (0 when the head is absent). Shape comes from the arguments when positive,
// else from the largest layer/head seen.
ScoreMap score_map_from_detect_results(const std::vector<TestResult>& tests, int n_layer, int n_head,
                                       const std::string& source);
// Means and frequencies from summary.json "heads" (no per-test lists).
ScoreMap score_map_from_detect_summary(const std::string& path);

// support_share of the passed (score > 50) and failed tests of one mask, for the
// distribution figure; both empty when the lines carry none.
struct SupportSplit {
  std::string mask;  // "" for the unmasked model
  std::vector<double> passed, failed;
};
std::vector<SupportSplit> support_splits(const std::vector<NiahLine>& tests);

// Masking sweep: NIAH mean score for each number K of masked heads.
struct SweepSeries {
  std::string name;                               // "top" or "random"
  std::vector<std::pair<double, double>> points;  // (K, mean score 0..100)
  // random only, when sweep.json has "random_seeds": each seed's draw.
  struct Seed {
    int k = 0;
    uint64_t seed = 0;
    double score = 0;
    std::vector<std::string> heads;  // "L-H" masked by this draw
  };
  std::vector<Seed> seeds;
};

struct NiahSummary {
  ModelInfo model;
  nlohmann::json settings = nlohmann::json::object();
  double mean_score = 0;
  nlohmann::json raw = nlohmann::json::object();
};

// A niah results.jsonl, read with the writer's own record (niah/niah_records.h NiahLine);
// also reads lines of the reference NIAH tool (the six reference fields).
std::vector<NiahLine> read_niah_results(const std::string& path);
NiahSummary read_niah_summary(const std::string& path);
std::vector<SweepSeries> read_sweep(const std::string& path);

// Mean score on a length x depth grid, as drawn in NIAH heatmaps.
struct NiahGrid {
  std::string mask;
  std::vector<int> lengths;  // ascending, columns
  std::vector<int> depths;   // ascending, rows
  // [depths.size()][lengths.size()] mean score 0..100; NaN where no test ran.
  std::vector<std::vector<double>> score;
  double mean_score = 0;  // over all tests of this mask
  int tests = 0;
};

// Groups tests by mask ("" first, then by name) and averages each grid cell.
std::vector<NiahGrid> niah_grids(const std::vector<NiahLine>& tests);
// The same grid from detect tests: cell value = mean ROUGE recall.
NiahGrid detect_accuracy_grid(const std::vector<TestResult>& tests);

// What an output directory holds.
enum class RunKind { detect, niah, unknown };

// One pair of detection methods in summary.json's "methods" (rhead detect --methods): the
// Spearman and Pearson correlation of their per-head means (NaN when undefined) and the
// overlap of their top-K heads.
struct MethodAgreement {
  std::string a, b;
  double spearman = 0, pearson = 0;
  struct Overlap {
    int k = 0, shared = 0;
  };
  std::vector<Overlap> top_k;
};
// The pairs of summary.json's "methods" (empty without it); errors name `where`.
std::vector<MethodAgreement> method_agreement_from_json(const nlohmann::json& summary, const std::string& where);

struct DetectRun {
  std::string dir;
  std::optional<DetectSummary> summary;
  std::vector<TestResult> tests;
  std::optional<ScoreMap> scores;
  std::optional<HeadStats> stats;          // head_stats.json (bootstrap intervals), when present
  std::vector<MethodAgreement> agreement;  // summary.json's "methods", when present
};

struct NiahRun {
  std::string dir;
  std::optional<NiahSummary> summary;
  std::vector<NiahLine> tests;
  std::vector<SweepSeries> sweep;
};

// Looks at summary.json (a "heads" array means detect, "mean_score" niah) and, if
// absent, at the first line of results.jsonl.
RunKind detect_run_kind(const std::string& dir);
DetectRun read_detect_run(const std::string& dir);
NiahRun read_niah_run(const std::string& dir);

}  // namespace rhead::analysis

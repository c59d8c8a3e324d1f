// KV-cache policy conditions of the experiments (niah, qa, cot): which heads keep the whole
// cache (--kv-full in the head-selection grammar, or a head_policy.json plan), the sweep over
// windows and full-head budgets, the accounting fields of result lines and summaries, and
// `rhead kv-plan`, which picks the (layer, KV head) pairs that keep the whole cache under a
// memory budget.
//
// head_policy.json (written by kv-plan, read by --kv-policy-file; other engines may load it):
//   {
//     "format": "rhead-head-policy", "version": 1,
//     "model":  {"source": str, "n_layer": int, "n_head": int, "n_kv_head": int, "head_dim": int},
//     "window": W, "sink": S,           // restricted heads keep positions j < S and the last W (i - j < W)
//     "length": N, "budget": F,         // the plan keeps at most F (0..1) of the full cache at N positions
//     "kv_dtype": "f16" | "f32" | "q8_0",
//     "full_kv_heads": [{"layer": l, "kv_head": g, "query_heads": [h, ...], "score": s}, ...],
//                                       // these KV heads keep every position; all others are windowed
//     "full_query_heads": ["l-h", ...], // the query heads that read them (GQA view)
//     "predicted": {"kv_bytes_full": B, "kv_bytes_kept": B, "kv_bytes_held": B, "kv_kept_fraction": f,
//                   "query_kept_fraction": f, "kv_kept_fraction_no_full_head": f},
//                                       // kv_bytes_held: what the CPU's compacted cache allocates
//                                       // at `length` (default prefill chunk; ops/kv_cache.h)
//     "ranking": [{"layer": l, "kv_head": g, "score": s}, ...],  // every KV head, best first
//     "scores": str                     // the score file the ranking came from
//   }
// A KV head's score is the highest mean retrieval score among its query heads: it must stay
// whole as soon as one of them is a retrieval head.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/score_map.h"
#include "io/duo_pattern.h"
#include "model/config.h"
#include "model/heads.h"
#include "model/kv_policy.h"

namespace rhead {

// What the KV options of a command ask for.
struct KvRequest {
  int64_t window = 0;                  // --kv-window (0: no policy)
  int64_t sink = 4;                    // --kv-sink
  std::string full = "none";           // --kv-full: none | all | top:K | random:K | heads:L-H,... | kv:L-G,...
  std::string policy_file;             // --kv-policy-file head_policy.json
  std::vector<int64_t> sweep_windows;  // --kv-sweep-window 16,32,64
  std::string sweep_full;              // --kv-sweep-full top:0,2,4,6
  bool sweep_random = false;           // --sweep-random: random:K full heads at each K too
  std::vector<uint64_t> seeds = {0};   // --seed (random:K; each seed is one condition)
};

// One KV condition.
struct KvSetting {
  std::string label;               // "" without policy; "kv W32 S4 top:6", "kv W32 S4 random:6 seed 1", ...
  std::string full_kind = "none";  // none | all | top | random | heads | plan
  int k = 0;                       // full query heads
  uint64_t seed = 0;               // random only
  KvPolicy policy;                 // inactive without policy
  nlohmann::json to_json() const;  // {label, window, sink, full_kind, full_k, seed, full_heads, full_kv_heads}
};

// The full query heads a --kv-full spec names. `scores` may be null unless the spec is
// top:K or random:K. Errors name --kv-full.
std::vector<HeadId> kv_full_heads(const std::string& spec, const ModelConfig& config, const analysis::ScoreMap* scores,
                                  uint64_t seed);

// A policy of window W, sink S, full heads from a spec.
KvSetting make_kv_setting(int64_t window, int64_t sink, const std::string& full_spec, const ModelConfig& config,
                          const analysis::ScoreMap* scores, uint64_t seed);

// Expands a request into its conditions: one inactive setting when no KV option is given;
// the --kv-window / --kv-full (one per seed for random:K) or --kv-policy-file condition; or
// the sweep (every window x every K, retrieval heads full and, with sweep_random, random
// heads full for every seed; K = 0 is the "no head full" condition of that window).
std::vector<KvSetting> kv_settings(const KvRequest& request, const ModelConfig& config,
                                   const analysis::ScoreMap* scores);

// "16,32,64" -> windows (each > 0).
std::vector<int64_t> parse_window_list(const std::string& text);

// The accounting of a setting at one length, as stored in result lines and summaries:
// {length, window, sink, full_query_heads, full_kv_heads, query_kept_fraction,
//  kv_kept_fraction, query_bytes_kept, query_bytes_full, kv_bytes_kept, kv_bytes_full,
//  kv_bytes_held_predicted} (held: what the CPU's compacted cache allocates at `length` with
//  the prefill chunk the accounting was made for). NIAH lines add kv_bytes_held, what the
//  session really held.
nlohmann::json kv_accounting_json(const KvAccounting& a, const KvPolicy& policy);

// line["kv_policy"] = setting.to_json(), line["kv_cache"] = its accounting at `length` for a
// session prefilling `chunk` tokens at a time (model/session.h's prefill_chunk_of).
void add_kv_fields(const KvSetting& setting, int head_dim, KvType kv_type, int64_t chunk, int64_t length,
                   nlohmann::json& line);

// --- kv-plan ---

struct KvPlanRequest {
  double budget = 0.25;  // fraction of the full cache (per KV head, the real memory), in (0, 1]
  int64_t length = 0;    // positions the budget is stated at
  int64_t window = 64;
  int64_t sink = 4;
  KvType kv_type = KvType::f16;      // the cache the budget is stated for
  int64_t chunk = kCpuPrefillChunk;  // the prefill chunk of the session the plan predicts (held rows)
};

struct KvGroupScore {
  int layer = 0, kv_head = 0;
  double score = 0;  // highest mean score of its query heads
};

struct KvPlan {
  KvPlanRequest request;
  std::vector<KvGroupScore> ranking;  // every KV head, best first (ties layer-major)
  std::vector<KvGroupScore> full;     // the chosen ones, in ranking order
  KvPolicy policy;
  KvAccounting predicted;
  double floor_fraction = 0;  // kv kept fraction with no full head
};

// Keeps whole the best-ranked KV heads (score > 0) while the KV kept fraction at `length`
// stays within the budget. Error when even no full head exceeds the budget.
KvPlan plan_kv_cache(const analysis::ScoreMap& scores, const ModelConfig& config, const KvPlanRequest& request);

nlohmann::json kv_plan_json(const KvPlan& plan, const ModelConfig& config, const std::string& model_source,
                            const std::string& scores_source);

// Reads a head_policy.json, or a DuoAttention pattern folder (io/duo_pattern.h), into a
// policy over `config` (its shape must match).
KvPolicy read_head_policy(const std::string& path, const ModelConfig& config);

// A DuoAttention pattern as a policy: window = recent_size, sink = sink_size, a KV head whose
// gate reaches the threshold keeps the whole cache (with every query head of its group).
// `where` names the pattern in errors (shape mismatch with `config`).
KvPolicy kv_policy_from_duo(const DuoPattern& pattern, const ModelConfig& config, const std::string& where);

// What `rhead kv-plan --format duo` writes for a plan.
enum class DuoGates {
  binary,  // 1 for a full KV head, 0 for a streaming one
  score,   // the KV head's score, with a threshold in config.json that selects exactly the plan's full heads
};
// Error when `score` cannot express the plan (a streaming head scores as high as a full one).
DuoPattern duo_pattern_of_plan(const KvPlan& plan, const ModelConfig& config, DuoGates gates);

}  // namespace rhead

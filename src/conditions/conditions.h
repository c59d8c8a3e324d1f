// The conditions of a run, resolved once for every command: the mask settings (niah, qa, cot)
// under every KV condition, and the one KV policy of a single-generation command (generate,
// attn, explain). cli/ only turns options into the requests below.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/score_map.h"
#include "conditions/kv_conditions.h"
#include "conditions/masks.h"
#include "model/loader.h"
#include "model/session.h"

namespace rhead {

// The resolved conditions of an experiment.
struct Conditions {
  std::optional<analysis::ScoreMap> scores;  // from the mask request's `scores`
  std::vector<MaskSetting> settings;         // baseline first; each mask under each KV condition
  bool kv_sweep = false;                     // a KV sweep was asked (kv_sweep.* outputs)
};

// Loads the score map, expands the mask request into settings and, for MaskMode::mean,
// calibrates head means on `calibration_tokens()` (called only then). No KV condition.
Conditions resolve_masks(const MaskRequest& masks, const LoadedModel& model,
                         const std::function<std::vector<int32_t>()>& calibration_tokens);

// Every mask setting under every KV condition of `kv` (its seeds and sweep_random come from
// the mask request). A KV sweep, or a baseline with a KV policy, also runs the full cache (no
// policy) as the reference; --sweep-random serves both sweeps.
Conditions resolve_conditions(const MaskRequest& masks, const KvRequest& kv, const LoadedModel& model,
                              const std::function<std::vector<int32_t>()>& calibration_tokens);

// The settings fields of run.json for the mask conditions.
void record_mask_settings(const MaskRequest& masks, const Conditions& conditions, nlohmann::json& settings);

// The one policy of a single generation (the request's sweep is ignored). `scores_path` (a
// head_score JSON or detect directory) is read only for top:K / random:K; `seed` for random:K.
KvPolicy kv_policy_for(const KvRequest& kv, const ModelConfig& config, const std::string& scores_path, uint64_t seed);

// `so` with `policy` applied (an inactive policy leaves it unchanged).
SessionOptions with_kv_policy(SessionOptions so, const KvPolicy& policy);

// One line for stderr describing what a policy keeps at `length` positions.
std::string describe_kv_policy(const KvPolicy& policy, const ModelConfig& config, KvType kv_type, int64_t length);

}  // namespace rhead

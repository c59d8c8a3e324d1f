// The mask and KV-cache conditions of a run, as the commands' options and the Python module's
// keyword arguments give them (the head grammar of model/heads.h in every string): the KV
// policy of one generation, the conditions of an experiment (every mask x every KV
// condition), and their record in run.json.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/score_map.h"
#include "model/kv_policy.h"
#include "model/loader.h"
#include "niah/causal.h"
#include "niah/kv_conditions.h"

namespace rhead {

// --kv-window, --kv-sink, --kv-full, --kv-policy-file and the KV sweep.
struct KvOptions {
  int64_t window = 0;
  int64_t sink = 4;
  std::string full = "none";
  std::string policy_file;
  // Sweep (experiments only).
  std::string sweep_window;
  std::string sweep_full;
  // Selection inputs of commands that have no --scores / --seed of their own.
  std::string scores;
  uint64_t seed = 0;
};

// The KV request of the options (single policy or sweep; seeds are the caller's).
KvRequest kv_request_of(const KvOptions& o);

// The one policy of a single-generation command. `scores_path` empty: none; `seed` for random:K.
KvPolicy kv_policy_from_options(const KvOptions& o, const ModelConfig& config, const std::string& scores_path,
                                uint64_t seed);

// The conditions of an experiment: the options plus the experiment's score map and seeds.
std::vector<KvSetting> kv_settings_from_options(const KvOptions& o, const ModelConfig& config,
                                                const analysis::ScoreMap* scores, const std::vector<uint64_t>& seeds,
                                                bool sweep_random);

// "uniform" | "zero" | "mean" and "decode" | "all"; Error naming the value otherwise.
MaskMode mask_mode_from_name(const std::string& name);
MaskPhase mask_phase_from_name(const std::string& name);

// --mask, --scores, --seed, --mask-mode, --mask-phase, --sweep, --sweep-random.
struct MaskOptions {
  std::string mask = "none";
  std::string scores;
  std::vector<uint64_t> seeds = {0};
  std::string mode = "uniform";
  std::string phase = "decode";
  std::string sweep;
  bool sweep_random = false;
};

struct ResolvedMasks {
  std::optional<analysis::ScoreMap> scores;  // from scores
  std::vector<MaskSetting> settings;
};

// Loads scores, expands mask / sweep into settings and, for mode mean,
// calibrates head means on `calibration_tokens()` (called only then).
ResolvedMasks resolve_masks(const MaskOptions& o, const LoadedModel& model, bool baseline,
                            const std::function<std::vector<int32_t>()>& calibration_tokens);

// The conditions of an experiment: every mask setting under every KV condition of `kv`. A
// KV sweep, or `baseline` with a KV policy, also runs the full cache (no policy) as the
// reference. sweep_random serves both sweeps. Also sets `kv_sweep` when a KV sweep is asked.
ResolvedMasks resolve_conditions(const MaskOptions& masks, const KvOptions& kv, const LoadedModel& model,
                                 bool baseline, const std::function<std::vector<int32_t>()>& calibration_tokens,
                                 bool* kv_sweep = nullptr);

// Records the mask options in a settings object.
void record_mask_settings(const MaskOptions& o, const ResolvedMasks& masks, nlohmann::json& settings);

}  // namespace rhead

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
#include "conditions/conditions.h"

namespace rhead {

// --kv-window, --kv-sink, --kv-full, --kv-policy-file and the KV sweep, as given.
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

// --mask, --scores, --seed, --mask-mode, --mask-phase, --sweep, --sweep-random, as given.
struct MaskOptions {
  std::string mask = "none";
  std::string scores;
  std::vector<uint64_t> seeds = {0};
  std::string mode = "uniform";
  std::string phase = "decode";
  std::string sweep;
  bool sweep_random = false;
};

// The mask request of the options (`baseline`: also run the unmasked model first). Error on an
// unknown mode or phase.
MaskRequest mask_request_of(const MaskOptions& o, bool baseline);

using ResolvedMasks = Conditions;

// resolve_conditions (conditions/conditions.h) of the options; also sets `kv_sweep` when a KV
// sweep is asked.
Conditions resolve_conditions(const MaskOptions& masks, const KvOptions& kv, const LoadedModel& model, bool baseline,
                              const std::function<std::vector<int32_t>()>& calibration_tokens,
                              bool* kv_sweep = nullptr);

// Records the mask options in a settings object.
void record_mask_settings(const MaskOptions& o, const Conditions& conditions, nlohmann::json& settings);

}  // namespace rhead

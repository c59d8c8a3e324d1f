// Mask options shared by the causal-experiment commands (niah, qa, cot).
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "analysis/score_map.h"
#include "cli/kv_options.h"
#include "model/loader.h"
#include "niah/causal.h"

namespace rhead::cli {

struct MaskCliOptions {
  std::string mask = "none";
  std::string scores;
  std::vector<uint64_t> seeds = {0};
  std::string mode = "uniform";
  std::string phase = "decode";
  std::string sweep;
  bool sweep_random = false;
};

void add_mask_options(CLI::App* cmd, MaskCliOptions& o);
// --support-heads N (niah, qa): the heads whose copies count for support_share.
void add_support_heads_option(CLI::App* cmd, int& n);

struct ResolvedMasks {
  std::optional<analysis::ScoreMap> scores;  // from --scores
  std::vector<MaskSetting> settings;
};

// Loads --scores, expands --mask / --sweep into settings and, for --mask-mode mean,
// calibrates head means on `calibration_tokens()` (called only then).
ResolvedMasks resolve_masks(const MaskCliOptions& o, const LoadedModel& model, bool baseline,
                            const std::function<std::vector<int32_t>()>& calibration_tokens);

// The conditions of an experiment: every mask setting under every KV condition of `kv`. A
// KV sweep, or --baseline with a KV policy, also runs the full cache (no policy) as the
// reference. --sweep-random serves both sweeps. Also sets `kv_sweep` when a KV sweep is asked.
ResolvedMasks resolve_conditions(const MaskCliOptions& masks, const KvCliOptions& kv, const LoadedModel& model,
                                 bool baseline, const std::function<std::vector<int32_t>()>& calibration_tokens,
                                 bool* kv_sweep = nullptr);

// Records the mask options in a settings object.
void record_mask_settings(const MaskCliOptions& o, const ResolvedMasks& masks, nlohmann::json& settings);

}  // namespace rhead::cli

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
#include "conditions/conditions.h"

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

// The mask request of the options (`baseline`: also run the unmasked model first).
MaskRequest mask_request(const MaskCliOptions& o, bool baseline);

// The conditions of an experiment (conditions/conditions.h): every mask setting under every
// KV condition of the options.
Conditions resolve_conditions(const MaskCliOptions& masks, const KvCliOptions& kv, const LoadedModel& model,
                              bool baseline, const std::function<std::vector<int32_t>()>& calibration_tokens);

}  // namespace rhead::cli

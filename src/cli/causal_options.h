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
#include "conditions/options.h"
#include "experiments/item_run.h"
#include "experiments/run_setup.h"

namespace rhead::cli {

// The options themselves and the conditions resolved from them live in
// conditions/options.h (shared with the Python module).
using MaskCliOptions = MaskOptions;

void add_mask_options(CLI::App* cmd, MaskCliOptions& o);
// --support-heads N (niah, qa): the heads whose copies count for support_share.
void add_support_heads_option(CLI::App* cmd, int& n);
// The options of a task over items (qa, cot): masks, KV policies and sweeps, --no-baseline,
// -o, --shard and -q.
// What qa and cot share: the conditions (masks, KV policy) and the run folder.
struct ItemRunCliOptions {
  MaskCliOptions masks;
  KvCliOptions kv;
  bool no_baseline = false;
  std::string output;
  std::string shard = "0/1";
  bool grow = false;
  bool quiet = false;
};

void add_item_run_options(CLI::App* cmd, ItemRunCliOptions& o, const std::string& default_output);

// The run part of a qa or cot run: folder, shard, the conditions, and `settings` with the shard
// and the mask settings recorded; progress goes to `bar`.
ItemRunOptions item_run_options(const ItemRunCliOptions& o, const Conditions& conditions, nlohmann::json settings,
                                ProgressBar& bar);

}  // namespace rhead::cli

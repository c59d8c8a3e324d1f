// Mask options of niah, qa and cot.
#include "cli/causal_options.h"

#include <chrono>
#include <iostream>

#include "cli/niah_options.h"
#include "io/error.h"

namespace rhead::cli {

void add_support_heads_option(CLI::App* cmd, int& n) {
  cmd->add_option("--support-heads", n,
                  "support_share counts copies by this many top heads of --scores (every head without --scores)")
      ->capture_default_str()
      ->check(at_least(1));
}

void add_mask_options(CLI::App* cmd, MaskCliOptions& o) {
  cmd->add_option("--mask", o.mask,
                  "heads to mask: none, top:K, random:K, heads:L-H,... or kv:L-G,... (top/random need --scores)")
      ->capture_default_str();
  cmd->add_option(
      "--scores", o.scores,
      "retrieval scores for top:K / random:K: a head_score JSON ({\"L-H\": [scores]}) or a detect directory");
  cmd->add_option("--seed", o.seeds,
                  "seed(s) of random:K, comma-separated; each seed is one condition, and a sweep averages them")
      ->delimiter(',')
      ->check(at_least(0))
      ->capture_default_str();
  cmd->add_option("--mask-mode", o.mode,
                  "how a masked head is removed: uniform (attends uniformly to its causal prefix, as the reference's "
                  "zeroed query), zero (output removed), mean (output replaced by its mean over a calibration pass). "
                  "Default uniform, the reference's setting")
      ->check(CLI::IsMember({"uniform", "zero", "mean"}))
      ->capture_default_str();
  cmd->add_option("--mask-phase", o.phase,
                  "when the mask applies: decode (generated tokens only; the prompt is prefilled unmasked, as in the "
                  "reference) or all (prefill and decode). Default decode")
      ->check(CLI::IsMember({"decode", "all"}))
      ->capture_default_str();
  cmd->add_option("--sweep", o.sweep,
                  "run every K of a list, e.g. top:0,5,10,20,50,100 (K = 0 is the unmasked model); "
                  "writes sweep.json, a table and a line plot");
  cmd->add_flag("--sweep-random", o.sweep_random, "with --sweep: also mask K random non-retrieval heads at each K");
}

ItemRunOptions item_run_options(const ItemRunCliOptions& o, const Conditions& conditions, nlohmann::json settings,
                                ProgressBar& bar) {
  settings["shard"] = o.shard;
  record_mask_settings(o.masks, conditions, settings);
  ItemRunOptions r;
  static_cast<RunFolderOptions&>(r) = run_folder(o.output, o.shard, o.grow);
  r.conditions = conditions.settings;
  r.settings = std::move(settings);
  r.progress = [&bar](int done, int total, int correct, double s) { bar.update(done, total, correct, s, ""); };
  return r;
}

void add_item_run_options(CLI::App* cmd, ItemRunCliOptions& o, const std::string& default_output) {
  o.output = default_output;
  add_mask_options(cmd, o.masks);
  add_kv_options(cmd, o.kv);
  add_kv_sweep_options(cmd, o.kv);
  cmd->add_flag("--no-baseline", o.no_baseline, "do not run the unmasked model");
  add_run_folder_options(
      cmd, {o.output, o.shard, o.grow, o.quiet, "items", "more conditions: masks, sweeps or KV settings"});
}

}  // namespace rhead::cli

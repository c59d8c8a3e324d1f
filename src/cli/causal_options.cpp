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
  cmd->add_option("--scores", o.scores,
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

ResolvedMasks resolve_masks(const MaskCliOptions& o, const LoadedModel& lm, bool baseline,
                            const std::function<std::vector<int32_t>()>& calibration_tokens) {
  refuse_duplicates(o.seeds, "--seed");
  ResolvedMasks r;
  if (!o.scores.empty()) {
    r.scores = analysis::load_score_map(o.scores);
  }
  MaskRequest req;
  req.mask = o.mask;
  req.scores = o.scores;
  req.seeds = o.seeds;
  req.mode = o.mode == "zero" ? MaskMode::zero : o.mode == "mean" ? MaskMode::mean : MaskMode::uniform;
  req.phase = o.phase == "all" ? MaskPhase::all : MaskPhase::decode;
  req.sweep = o.sweep;
  req.sweep_random = o.sweep_random;
  req.baseline = baseline;
  if (o.sweep_random && o.sweep.empty()) throw Error("--sweep-random needs --sweep");
  if (!o.sweep.empty() && o.mask != "none") throw Error("give either --mask or --sweep, not both");
  r.settings = mask_settings(req, lm.model->config, r.scores ? &*r.scores : nullptr);
  if (req.mode == MaskMode::mean) {
    bool any = false;
    for (const auto& s : r.settings) any |= !s.mask.empty();
    if (any) {
      const std::vector<float> means = calibrate_head_means(lm, calibration_tokens());
      for (auto& s : r.settings) s.mask.means = means;
    }
  }
  return r;
}

ResolvedMasks resolve_conditions(const MaskCliOptions& masks, const KvCliOptions& kv, const LoadedModel& lm,
                                 bool baseline, const std::function<std::vector<int32_t>()>& calibration_tokens,
                                 bool* kv_sweep) {
  const bool sweep = !kv.sweep_window.empty() || !kv.sweep_full.empty();
  if (kv_sweep) *kv_sweep = sweep;
  MaskCliOptions mask_options = masks;
  if (sweep && masks.sweep.empty()) mask_options.sweep_random = false;  // the flag belongs to the KV sweep
  ResolvedMasks r = resolve_masks(mask_options, lm, baseline, calibration_tokens);
  std::vector<KvSetting> kvs =
      kv_settings_from_options(kv, lm.model->config, r.scores ? &*r.scores : nullptr, masks.seeds, masks.sweep_random);
  if (kvs.front().policy.active() && (sweep || baseline)) kvs.insert(kvs.begin(), KvSetting{});
  r.settings = with_kv_settings(r.settings, kvs);
  return r;
}

void record_mask_settings(const MaskCliOptions& o, const ResolvedMasks& masks, nlohmann::json& settings) {
  settings["mask_mode"] = o.mode;
  settings["mask_phase"] = o.phase;
  settings["scores"] = o.scores;
  nlohmann::json list = nlohmann::json::array();
  for (const auto& s : masks.settings) list.push_back(s.to_json());
  settings["masks"] = list;
}

}  // namespace rhead::cli

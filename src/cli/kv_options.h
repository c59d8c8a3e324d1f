// The KV-cache policy options, one helper for every command that runs a model:
//   --kv-window W        restricted heads keep the last W positions (0, the default: no policy)
//   --kv-sink S          the first S positions are always kept (default 4)
//   --kv-full SPEC       heads that keep the whole cache: none | all | top:K | random:K |
//                        heads:L-H,... | kv:L-G,... (top/random need a score map, random a seed)
//   --kv-policy-file F   a head_policy.json written by `rhead kv-plan`
// and, for the experiments (niah, qa, cot), the sweep:
//   --kv-sweep-window 16,32,64 --kv-sweep-full top:0,2,4,6 [--sweep-random]
//
// A command with one generation (generate, attn, explain) calls add_kv_options and, when it has
// no --scores / --seed of its own, add_kv_selection_options; then kv_policy_from_options gives
// the policy to put in SessionOptions::kv_policy (with_kv_policy, conditions/conditions.h).
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "analysis/score_map.h"
#include "model/kv_policy.h"
#include "model/session.h"
#include "conditions/conditions.h"

namespace rhead::cli {

struct KvCliOptions {
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

// --kv-window, --kv-sink, --kv-full, --kv-policy-file.
void add_kv_options(CLI::App* cmd, KvCliOptions& o);
// --scores and --seed for --kv-full top:K / random:K (commands without mask options).
void add_kv_selection_options(CLI::App* cmd, KvCliOptions& o);
// --kv-sweep-window, --kv-sweep-full (the experiments; --sweep-random is the mask options' flag).
void add_kv_sweep_options(CLI::App* cmd, KvCliOptions& o);

// The KV request of the options (the sweep's seeds and random flag come from the masks).
KvRequest kv_request(const KvCliOptions& o);

// The one policy of a single-generation command. `scores_path` empty: none; `seed` for random:K.
KvPolicy kv_policy_from_options(const KvCliOptions& o, const ModelConfig& config, const std::string& scores_path,
                                uint64_t seed);

}  // namespace rhead::cli

// The KV-cache policy options, one helper for every command that runs a model:
//   --kv-window W        restricted heads keep the last W positions (0, the default: no policy)
//   --kv-sink S          the first S positions are always kept (default 4)
//   --kv-full SPEC       heads that keep the whole cache: none | all | top:K | random:K |
//                        heads:L-H,... | kv:L-G,... (top/random need a score map, random a seed)
//   --kv-policy-file F   a head_policy.json written by `rhead kv-plan`, or a DuoAttention
//                        pattern folder (io/duo_pattern.h; `rhead kv-plan --format duo`)
// and, for the experiments (niah, qa, cot), the sweep:
//   --kv-sweep-window 16,32,64 --kv-sweep-full top:0,2,4,6 [--sweep-random]
//
// A command with one generation (generate, attn, explain) calls add_kv_options and, when it has
// no --scores / --seed of its own, add_kv_selection_options; then kv_policy_from_options gives
// the policy to put in SessionOptions::kv_policy (with_kv_policy).
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "analysis/score_map.h"
#include "model/kv_policy.h"
#include "model/session.h"
#include "conditions/options.h"
#include "experiments/generation.h"
#include "conditions/options.h"

namespace rhead::cli {

// The options themselves and the policies and conditions built from them live in
// conditions/options.h (shared with the Python module).
using KvCliOptions = KvOptions;

// --kv-window, --kv-sink, --kv-full, --kv-policy-file.
void add_kv_options(CLI::App* cmd, KvCliOptions& o);
// --scores and --seed for --kv-full top:K / random:K (commands without mask options).
void add_kv_selection_options(CLI::App* cmd, KvCliOptions& o);
// --kv-sweep-window, --kv-sweep-full (the experiments; --sweep-random is the mask options' flag).
void add_kv_sweep_options(CLI::App* cmd, KvCliOptions& o);

}  // namespace rhead::cli

// KV-cache policy options shared by every command that runs a model.
#include "cli/kv_options.h"

#include <cstdio>

#include "cli/common.h"
#include "io/error.h"

namespace rhead::cli {

void add_kv_options(CLI::App* cmd, KvCliOptions& o) {
  cmd->add_option("--kv-window", o.window,
                  "KV policy: restricted heads see only the last W positions (plus the sink), in prefill and decode; "
                  "0: no policy")
      ->check(CLI::Range(int64_t{0}, int64_t{INT32_MAX}))
      ->capture_default_str();
  cmd->add_option("--kv-sink", o.sink, "KV policy: the first S positions stay visible to every head")
      ->check(CLI::Range(int64_t{0}, int64_t{INT32_MAX}))
      ->capture_default_str();
  cmd->add_option("--kv-full", o.full,
                  "KV policy: heads that keep the whole cache: none, all, top:K, random:K (top/random need --scores; "
                  "random draws non-retrieval heads with --seed), heads:L-H,... or kv:L-G,...")
      ->capture_default_str();
  cmd->add_option("--kv-policy-file", o.policy_file,
                  "KV policy from a head_policy.json written by `rhead kv-plan` (window, sink, full KV heads), or a "
                  "DuoAttention pattern folder (full_attention_heads.tsv + config.json: window = recent_size, sink = "
                  "sink_size, full KV heads = gates >= threshold)");
}

void add_kv_selection_options(CLI::App* cmd, KvCliOptions& o) {
  cmd->add_option("--scores", o.scores,
                  "retrieval scores for --kv-full top:K / random:K: a head_score JSON or a detect directory");
  cmd->add_option("--seed", o.seed, "seed of --kv-full random:K")->capture_default_str();
}

void add_kv_sweep_options(CLI::App* cmd, KvCliOptions& o) {
  cmd->add_option("--kv-sweep-window", o.sweep_window,
                  "KV sweep: windows to run, e.g. 16,32,64 (each with --kv-sink), writes kv_sweep.{json,tsv,png,svg}");
  cmd->add_option("--kv-sweep-full", o.sweep_full,
                  "KV sweep: numbers of full heads, e.g. top:0,2,4,6 (K = 0: no head full); with --sweep-random also "
                  "random:K heads for every --seed");
}

}  // namespace rhead::cli

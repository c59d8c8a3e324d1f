// `rhead info -m MODEL`: what a model is, as rhead sees it.
#include <cstdio>
#include <map>

#include "cli/common.h"
#include "cli/command.h"

namespace rhead::cli {
namespace {

void run_info(const ModelOptions& o) {
  LoadedModel lm = load_model_from_options(o);
  const Model& m = *lm.model;
  const ModelConfig& c = m.config;
  std::map<std::string, int> types;
  auto count = [&](const Weight& w) { types[dtype_name(w.type)]++; };
  count(m.tok_embd);
  if (m.output.data != m.tok_embd.data) count(m.output);
  for (const auto& l : m.layers) for_each_layer_weight(l, count);
  std::printf("model:          %s (%s)\n", m.source.c_str(), m.format.c_str());
  std::printf("architecture:   %s (family %s)\n", c.architecture.c_str(), c.family.c_str());
  std::printf("layers:         %d\n", c.n_layer);
  std::printf("heads:          %d query, %d KV (group size %d)\n", c.n_head, c.n_kv_head, c.group_size());
  std::printf("head dim:       %d\n", c.head_dim);
  if (c.n_expert > 0)
    std::printf("width:          %d (experts: %d, %d used per token, expert MLP %d)\n", c.n_embd, c.n_expert,
                c.n_expert_used, c.n_ff_expert);
  else
    std::printf("width:          %d (MLP %d)\n", c.n_embd, c.n_ff);
  std::printf("vocab:          %d\n", c.n_vocab);
  std::printf("context length: %d\n", c.n_ctx_train);
  std::printf("rope:           theta %g, %s pairs, scaling %s", c.rope_theta,
              c.rope_pairing == RopePairing::half ? "half-split" : "adjacent", rope_scaling_name(c.rope_scaling));
  if (c.rope_scaling != RopeScaling::none) std::printf(" (factor %g)", c.rope_factor);
  std::printf("\n");
  std::printf("rms_norm_eps:   %g\n", c.rms_eps);
  std::printf("embeddings:     %s\n", c.tied_embeddings ? "tied" : "untied");
  std::printf("qkv bias:       %s\n", c.qkv_bias ? "yes" : "no");
  if (c.sliding_window > 0)
    std::printf("sliding window: %lld (%s)\n", static_cast<long long>(c.sliding_window),
                c.sliding_window_period == 1 ? "every layer" : "even layers");
  if (c.attn_softcap > 0 || c.final_softcap > 0)
    std::printf("soft-caps:      attention %g, final logits %g\n", c.attn_softcap, c.final_softcap);
  std::printf("tensor types:  ");
  for (const auto& [name, n] : types) std::printf(" %s x%d", name.c_str(), n);
  std::printf("\n");
  std::printf("parameters:     %lld (%.3f B)\n", static_cast<long long>(m.n_params()), m.n_params() / 1e9);
  std::printf("weight size:    %s\n", human_bytes(static_cast<double>(m.weight_bytes())).c_str());
  if (lm.tokenizer)
    std::printf("tokenizer:      %d tokens, BOS %d, EOS %d\n", lm.tokenizer->n_vocab(), lm.tokenizer->bos_id(),
                lm.tokenizer->eos_id());
  else
    std::printf("tokenizer:      none (pass --tokenizer)\n");
}

CLI::App* add_command(CLI::App& app, ModelOptions& o) {
  auto* cmd = app.add_subcommand("info", "print a model's architecture, shape and tensor types");
  add_model_options(cmd, o);
  return cmd;
}

const Command<ModelOptions> command("info", add_command, run_info);

}  // namespace
}  // namespace rhead::cli

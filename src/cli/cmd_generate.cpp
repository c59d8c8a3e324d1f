// `rhead generate -m MODEL -p PROMPT -n N`: greedy decoding, then prefill and decode speed.
#include <cstdio>
#include <iostream>

#include "cli/common.h"
#include "cli/command.h"
#include "cli/kv_options.h"
#include "experiments/generation.h"

namespace rhead::cli {
namespace {

struct GenerateOptions {
  ModelOptions model;
  std::string prompt;
  int n = 64;
  bool no_bos = false;
  bool stop_at_eos = true;
  KvCliOptions kv;
};

void run_generate(const GenerateOptions& o) {
  LoadedModel lm = load_model_from_options(o.model);
  GenerationRequest q;
  q.prompt = o.prompt;
  q.add_bos = !o.no_bos;
  q.max_new_tokens = o.n;
  q.stop_at_eos = o.stop_at_eos;
  q.scores = o.kv.scores;
  q.seed = o.kv.seed;
  q.kv = kv_request_of(o.kv);
  const Generation g =
      generate(lm, session_options(o.model), q, [](const std::string& text) { std::cout << text << std::flush; });
  std::cout << "\n";
  if (g.kv_policy.active())
    std::fprintf(stderr, "%s\n",
                 describe_kv_policy(g.kv_policy, lm.model->config, session_options(o.model).kv_type(),
                                    static_cast<int64_t>(g.prompt_tokens.size()) + o.n)
                     .c_str());
  const GenerateResult& r = g.timing;
  // Fewer tokens than asked and the cache full: the context, not the model, ended it.
  if (g.stopped_by_context)
    std::fprintf(stderr, "stopped after %zu of %d tokens: the context of %lld tokens is full (raise --ctx)\n",
                 g.tokens.size(), o.n, static_cast<long long>(g.capacity));
  std::fprintf(stderr, "prefill: %lld tokens, %.1f tokens/s | decode: %zu tokens, %.1f tokens/s\n",
               static_cast<long long>(r.n_prefill), r.prefill_seconds > 0 ? r.n_prefill / r.prefill_seconds : 0.0,
               r.tokens.size(), r.decode_seconds > 0 ? r.tokens.size() / r.decode_seconds : 0.0);
}

CLI::App* add_command(CLI::App& app, GenerateOptions& o) {
  auto* cmd = app.add_subcommand("generate", "greedy decoding from a prompt");
  add_model_options(cmd, o.model);
  cmd->add_option("-p,--prompt", o.prompt, "prompt text (default: empty, BOS only)");
  cmd->add_option("-n,--n-tokens", o.n, "tokens to generate")->check(at_least(0));
  cmd->add_flag("--no-bos", o.no_bos, "do not add the BOS token");
  cmd->add_flag("!--ignore-eos", o.stop_at_eos, "keep generating past the end-of-sequence token");
  add_kv_options(cmd, o.kv);
  add_kv_selection_options(cmd, o.kv);
  return cmd;
}

const Command<GenerateOptions> command("generate", add_command, run_generate);

}  // namespace
}  // namespace rhead::cli

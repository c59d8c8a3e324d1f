// `rhead generate -m MODEL -p PROMPT -n N`: greedy decoding, then prefill and decode speed.
#include <cstdio>
#include <iostream>

#include "cli/common.h"
#include "cli/command.h"
#include "cli/kv_options.h"
#include "io/error.h"
#include "model/generate.h"

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
  const Tokenizer& tok = lm.require_tokenizer();
  std::vector<int32_t> prompt = tok.encode(o.prompt, !o.no_bos);
  if (prompt.empty()) throw Error("prompt is empty and the tokenizer adds no BOS token");
  const KvPolicy policy = kv_policy_from_options(o.kv, lm.model->config, o.kv.scores, o.kv.seed);
  if (policy.active())
    std::fprintf(stderr, "%s\n",
                 describe_kv_policy(policy, lm.model->config, o.model.kv_type == "f16",
                                    static_cast<int64_t>(prompt.size()) + o.n)
                     .c_str());
  Session session(lm.model, with_kv_policy(session_options(o.model), policy));
  if (o.n > 0 && static_cast<int64_t>(prompt.size()) >= session.capacity())
    throw Error("--ctx: the context of " + std::to_string(session.capacity()) + " tokens leaves no room to generate after the prompt of " +
                std::to_string(prompt.size()) + " tokens");
  std::string printed = tok.decode(prompt);
  std::cout << printed << std::flush;
  std::vector<int32_t> all = prompt;
  GreedyOptions go;
  go.max_new_tokens = o.n;
  go.on_token = [&](const DecodeStep& s) {
    if (o.stop_at_eos && tok.is_end_of_generation(s.token)) return false;
    all.push_back(s.token);
    // Print the newly completed text: decode the whole sequence so multi-token characters
    // and the SentencePiece space rules come out right.
    std::string text = tok.decode(all);
    if (text.size() >= printed.size() && text.compare(0, printed.size(), printed) == 0) {
      std::cout << text.substr(printed.size()) << std::flush;
      printed = text;
    }
    return true;
  };
  GenerateResult r = generate_greedy(session, prompt, go);
  std::cout << "\n";
  // Fewer tokens than asked and the cache full: the context, not the model, ended it.
  if (static_cast<int>(r.tokens.size()) < o.n && session.n_past() >= session.capacity())
    std::fprintf(stderr, "stopped after %zu of %d tokens: the context of %lld tokens is full (raise --ctx)\n",
                 r.tokens.size(), o.n, static_cast<long long>(session.capacity()));
  std::fprintf(stderr, "prefill: %lld tokens, %.1f tokens/s | decode: %zu tokens, %.1f tokens/s\n",
               static_cast<long long>(r.n_prefill), r.prefill_seconds > 0 ? r.n_prefill / r.prefill_seconds : 0.0,
               r.tokens.size(), r.decode_seconds > 0 ? r.tokens.size() / r.decode_seconds : 0.0);
}

CommandRegistrar reg("generate", [](CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  auto* cmd = app.add_subcommand("generate", "greedy decoding from a prompt");
  add_model_options(cmd, o->model);
  cmd->add_option("-p,--prompt", o->prompt, "prompt text (default: empty, BOS only)");
  cmd->add_option("-n,--n-tokens", o->n, "tokens to generate")->check(at_least(0));
  cmd->add_flag("--no-bos", o->no_bos, "do not add the BOS token");
  cmd->add_flag("!--ignore-eos", o->stop_at_eos, "keep generating past the end-of-sequence token");
  add_kv_options(cmd, o->kv);
  add_kv_selection_options(cmd, o->kv);
  cmd->callback([o] { run_generate(*o); });
});

}  // namespace
}  // namespace rhead::cli

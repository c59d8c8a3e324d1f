// `rhead qa -m MODEL [--data FILE.jsonl]`: extractive QA (SQuAD exact match and F1) with
// and without head masks.
#include <iostream>

#include "cli/causal_options.h"
#include "cli/command.h"
#include "cli/niah_options.h"
#include "io/error.h"
#include "experiments/detect.h"
#include "support/explain.h"
#include "experiments/qa_run.h"
#include "experiments/qa_task.h"

namespace rhead::cli {
namespace {

using nlohmann::json;

struct QaOptions {
  ModelOptions model;
  std::string data;
  std::string prompt_template = kDefaultQaTemplate;
  std::string chat_template;
  bool no_chat = false;
  int max_new_tokens = 32;
  int support_heads = 10;
  ItemRunCliOptions run;
};

PromptFormat qa_format(const QaOptions& o, const Tokenizer& tok) {
  PromptFormat f;
  f.base_template = o.prompt_template;
  f.chat_user_template = o.prompt_template;
  f.chat = choose_chat_template(tok, o.chat_template, o.no_chat);
  if (o.prompt_template.find("{context}") == std::string::npos ||
      o.prompt_template.find("{question}") == std::string::npos)
    throw Error("--prompt-template must contain {context} and {question}");
  return f;
}

void run(const QaOptions& o) {
  LoadedModel lm = load_model_from_options(o.model);
  const Tokenizer& tok = lm.require_tokenizer();
  const std::vector<QaItem> items =
      o.data.empty() ? parse_qa_jsonl(builtin_qa_jsonl(), "builtin:qa_small") : read_qa_items(o.data);
  const PromptFormat format = qa_format(o, tok);
  Conditions masks = resolve_conditions(o.run.masks, o.run.kv, lm, !o.run.no_baseline, [&] {
    std::string text;
    for (const auto& it : items) text += it.context + "\n";
    std::vector<int32_t> ids = tok.encode(text, true, false);
    ids.resize(std::min<size_t>(ids.size(), std::min<int64_t>(lm.model->config.n_ctx_train, 1024)));
    return ids;
  });

  json settings;
  json fingerprint = model_fingerprint(o.model, lm);
  fingerprint.update(
      json{{"data", data_fingerprint(o.data, "builtin:qa_small")},
           {"prompt", format.chat ? chat_template_name(*format.chat) + ": " + o.prompt_template : o.prompt_template},
           {"max_new_tokens", o.max_new_tokens}});
  settings["fingerprint"] = fingerprint;
  // support_share: copies by the top heads of --scores, else by every head.
  const std::vector<HeadId> support_heads =
      support_heads_for(masks.scores ? &masks.scores->mean : nullptr, o.support_heads, lm.model->config);
  settings["support_heads"] = head_keys(support_heads);

  ProgressBar bar(!o.run.quiet);
  QaRunOptions ro;
  ro.run = item_run_options(o.run, masks, settings, bar);
  ro.sweep = !o.run.masks.sweep.empty();
  ro.kv_sweep = masks.kv_sweep;
  ro.format = format;
  ro.max_new_tokens = o.max_new_tokens;
  ro.support_heads = support_heads;
  const RunDir dir = run_qa(lm, session_options(o.model), items, ro);
  bar.finish();

  std::cout << write_qa_outputs(dir);
  std::cout << "\nwrote " << o.run.output << "/{results.jsonl, summary.json"
            << (dir.record().value("sweep", false) ? ", sweep.json, sweep.png/svg" : "") << "}\n";
}

CLI::App* add_command(CLI::App& app, QaOptions& o) {
  auto* cmd = app.add_subcommand(
      "qa",
      "extractive QA (SQuAD exact match / F1) with and without head masks (default mask mode uniform, phase decode)");
  add_model_options(cmd, o.model);
  cmd->add_option(
      "--data", o.data,
      "JSONL, one {\"context\", \"question\", \"answers\": [...]} a line (default: the built-in qa_small set)");
  cmd->add_option("--prompt-template", o.prompt_template,
                  "prompt with {context} and {question}; the answer is the text generated up to the first newline")
      ->capture_default_str();
  cmd->add_option("--chat-template", o.chat_template, "wrap the prompt as a user message of this chat template");
  cmd->add_flag("--no-chat", o.no_chat, "never use the model's chat template");
  cmd->add_option("--max-new-tokens", o.max_new_tokens, "longest answer in tokens")
      ->capture_default_str()
      ->check(at_least(1));
  add_support_heads_option(cmd, o.support_heads);
  add_item_run_options(cmd, o.run, "runs/qa");
  return cmd;
}

const Command<QaOptions> command("qa", add_command, run);

}  // namespace
}  // namespace rhead::cli

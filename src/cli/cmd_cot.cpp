// `rhead cot -m MODEL [--data FILE.jsonl]`: GSM8K-style arithmetic, answer-only and
// chain-of-thought prompting, accuracy per style under each mask setting.
#include <iostream>

#include "cli/causal_options.h"
#include "cli/command.h"
#include "cli/niah_options.h"
#include "io/error.h"
#include "experiments/cot_run.h"
#include "experiments/cot_task.h"
#include "experiments/detect.h"

namespace rhead::cli {
namespace {

using nlohmann::json;

struct CotOptions {
  ModelOptions model;
  std::string data;
  std::string fewshot;
  int shots = 4;
  std::vector<std::string> styles = {"answer_only", "cot"};
  std::string chat_template;
  bool no_chat = false;
  int max_new_tokens = 96;
  ItemRunCliOptions run;
};

void run(const CotOptions& o) {
  refuse_duplicates(o.styles, "--styles");
  LoadedModel lm = load_model_from_options(o.model);
  const Tokenizer& tok = lm.require_tokenizer();
  const std::vector<CotItem> items =
      o.data.empty() ? parse_cot_jsonl(builtin_arith_jsonl(), "builtin:arith_small") : read_cot_items(o.data);
  std::vector<CotItem> shots;
  if (o.fewshot != "none") {
    shots = o.fewshot.empty() ? parse_cot_jsonl(builtin_arith_fewshot_jsonl(), "builtin:arith_fewshot")
                              : read_cot_items(o.fewshot);
    if (o.shots < static_cast<int>(shots.size())) shots.resize(std::max(0, o.shots));
  }
  std::vector<CotStyle> styles;
  for (const auto& s : o.styles) styles.push_back(cot_style_from_name(s));
  PromptFormat format;
  format.chat = choose_chat_template(tok, o.chat_template, o.no_chat);
  Conditions masks = resolve_conditions(o.run.masks, o.run.kv, lm, !o.run.no_baseline, [&] {
    std::vector<int32_t> ids =
        tok.encode(cot_prompt_text(shots, items.front().question, CotStyle::chain_of_thought), true, false);
    ids.resize(std::min<size_t>(ids.size(), std::min<int64_t>(lm.model->config.n_ctx_train, 1024)));
    return ids;
  });

  json shot_ids = json::array();
  for (const auto& s : shots) shot_ids.push_back(s.question);
  json settings;
  json fingerprint = model_fingerprint(o.model, lm);
  fingerprint.update(
      json{{"data", data_fingerprint(o.data, "builtin:arith_small")},
           {"fewshot", shot_ids},
           {"fewshot_file", data_fingerprint(o.fewshot == "none" ? "" : o.fewshot, "builtin:arith_fewshot")},
           {"chat", format.chat ? chat_template_name(*format.chat) : "none"},
           {"max_new_tokens", o.max_new_tokens}});
  settings["fingerprint"] = fingerprint;
  settings["styles"] = o.styles;

  ProgressBar bar(!o.run.quiet);
  CotRunOptions ro;
  ro.run = item_run_options(o.run, masks, settings, bar);
  ro.shots = shots;
  ro.styles = styles;
  ro.format = format;
  ro.max_new_tokens = o.max_new_tokens;
  const RunDir dir = run_cot(lm, session_options(o.model), items, ro);
  bar.finish();

  std::cout << write_cot_outputs(dir);
  std::cout << "\nwrote " << o.run.output << "/{results.jsonl, summary.json}\n";
}

CLI::App* add_command(CLI::App& app, CotOptions& o) {
  auto* cmd = app.add_subcommand("cot",
                                 "arithmetic reasoning, answer-only vs chain-of-thought, under head masks (default "
                                 "mask mode uniform, phase decode)");
  add_model_options(cmd, o.model);
  cmd->add_option("--data", o.data,
                  "JSONL, one {\"question\", \"answer\"} a line, the answer ending with \"#### N\" "
                  "(default: the built-in arith_small set)");
  cmd->add_option("--fewshot", o.fewshot,
                  "few-shot exemplars in the same format (default: the built-in arith_fewshot set; 'none': zero-shot)");
  cmd->add_option("--shots", o.shots, "exemplars used, from the start of the file")->capture_default_str();
  cmd->add_option("--styles", o.styles,
                  "prompting styles: answer_only (exemplars end in \"The answer is N.\"), cot (exemplars reason first)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--chat-template", o.chat_template, "wrap the prompt as a user message of this chat template");
  cmd->add_flag("--no-chat", o.no_chat, "never use the model's chat template");
  cmd->add_option("--max-new-tokens", o.max_new_tokens, "longest chain-of-thought answer (answer_only: at most 16)")
      ->capture_default_str()
      ->check(at_least(1));
  add_item_run_options(cmd, o.run, "runs/cot");
  cmd->footer("The answer's number is the first after \"The answer is\", else after \"####\", else the last number.");
  return cmd;
}

const Command<CotOptions> command("cot", add_command, run);

}  // namespace
}  // namespace rhead::cli

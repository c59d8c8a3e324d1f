// NIAH command options.
#include "cli/niah_options.h"

namespace rhead::cli {

void add_prompt_options(CLI::App* cmd, std::string& chat_template, bool& no_chat, std::string& prompt_template) {
  cmd->add_option("--chat-template", chat_template, "force a chat prompt with this template: " + chat_template_names());
  cmd->add_flag("--no-chat", no_chat, "use the base prompt even if the model has a chat template");
  cmd->add_option("--prompt-template", prompt_template,
                  "prompt with {context} and {question} placeholders (default: the reference base prompt)");
}

void add_run_folder_options(CLI::App* cmd, RunFolderFlags f) {
  cmd->add_option("-o,--output", f.output, "output directory (rerun with it to resume)")->capture_default_str();
  cmd->add_option("--shard", f.shard,
                  "run shard I of N (I/N) of the " + f.keys + "; auto: this task of a Slurm job array")
      ->capture_default_str();
  cmd->add_flag("--grow", f.grow,
                "resume a folder whose run had a smaller grid (" + f.what_grows +
                    "): its lines are kept and only the new keys run; every other setting must match");
  cmd->add_flag("-q,--quiet", f.quiet, "no progress bar");
}

void add_niah_options(CLI::App* cmd, NiahCliOptions& o, const std::string& default_output) {
  add_model_options(cmd, o.model);
  o.output = default_output;
  cmd->add_option("--needles", o.needles,
                  "needle sets, JSONL {needle, question, real_needle[, haystack]} (default: built-in)");
  cmd->add_option("--haystack", o.haystack,
                  "folder of .txt files used as the haystack (default: built-in filler text)");
  cmd->add_option(
         "--lengths", o.lengths,
         "context lengths MIN:MAX:N as the reference counts them: each prompt's haystack holds the length minus "
         "--buffer tokens (default 200), the template, question and needle come on top; clipped to the model's "
         "context")
      ->capture_default_str();
  cmd->add_option("--depths", o.depths, "number of needle depths from 0 to 100%")
      ->capture_default_str()
      ->check(at_least(1));
  add_prompt_options(cmd, o.chat_template, o.no_chat, o.prompt_template);
  cmd->add_option("--buffer", o.buffer, "tokens kept free for question and answer")
      ->capture_default_str()
      ->check(at_least(0));
  cmd->add_option("--max-new-tokens", o.max_new_tokens, "longest answer in tokens")
      ->capture_default_str()
      ->check(at_least(1));
  cmd->add_flag("--no-prefix-reuse", o.no_prefix_reuse, "prefill every prompt from scratch");
  add_run_folder_options(cmd, {o.output, o.shard, o.grow, o.quiet, "grid", "more --lengths, --depths or masks"});
}

}  // namespace rhead::cli

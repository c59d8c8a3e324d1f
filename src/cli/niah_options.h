// Options shared by the NIAH commands (detect, niah): needles, haystack, grid, prompt.
#pragma once
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/common.h"
#include "io/run_dir.h"
#include "experiments/runner.h"

namespace rhead::cli {

enum class DefaultNeedles { builtin_facts, sandwich };

struct NiahCliOptions {
  ModelOptions model;
  std::string needles;          // JSONL; empty: built-in
  std::string haystack;         // folder of .txt; empty: built-in filler
  std::string lengths = "1000:50000:20";
  int depths = 10;
  std::string chat_template;    // force a chat template by name
  bool no_chat = false;
  std::string prompt_template;  // {context} and {question}
  int64_t buffer = 200;
  int max_new_tokens = 50;
  bool no_prefix_reuse = false;
  std::string output;
  std::string shard = "0/1";
  bool quiet = false;
};

void add_niah_options(CLI::App* cmd, NiahCliOptions& o, const std::string& default_output);

// --chat-template, --no-chat, --prompt-template.
void add_prompt_options(CLI::App* cmd, std::string& chat_template, bool& no_chat, std::string& prompt_template);

// The prompt format chosen by --chat-template / --no-chat / --prompt-template: a named chat
// template, else the model's own chat template (unless --no-chat or a prompt template is
// given), else the base prompt (builtin:induction: its own template).
PromptFormat prompt_format_from_options(const std::string& chat_template, bool no_chat, const std::string& prompt_template,
                                       const LoadedModel& lm);

// Builds the runner config from the options; `settings` receives a record of every choice
// (with a "fingerprint" sub-object of those that must match to resume a run).
NiahRunConfig make_niah_config(const NiahCliOptions& o, const LoadedModel& model, DefaultNeedles defaults,
                               nlohmann::json& settings);

// "I/N" (or "auto": this task of a Slurm job array) -> shard I of N.
Shard parse_shard(const std::string& spec);

// A one-line progress display on stderr: tests done, ETA, running accuracy.
class ProgressBar {
 public:
  explicit ProgressBar(bool enabled) : enabled_(enabled) {}
  void update(int done, int total, int passed, double elapsed_s, const std::string& label);
  void finish();

 private:
  bool enabled_;
  double last_print_ = -1;
};

}  // namespace rhead::cli

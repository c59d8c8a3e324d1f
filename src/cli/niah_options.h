// Options shared by the NIAH commands (detect, niah): needles, haystack, grid, prompt.
#pragma once
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/common.h"
#include "experiments/run_setup.h"

namespace rhead::cli {

// The options themselves, the runner config built from them, the shard grammar and the
// progress line live in experiments/run_setup.h (shared with the Python module).
using NiahCliOptions = NiahOptions;

// The run folder's options, one group for every run command: -o, --shard (of the `keys`),
// --grow (`what_grows` names how a grid grows) and -q.
struct RunFolderFlags {
  std::string& output;
  std::string& shard;
  bool& grow;
  bool& quiet;
  std::string keys, what_grows;
};
void add_run_folder_options(CLI::App* cmd, RunFolderFlags flags);
void add_niah_options(CLI::App* cmd, NiahCliOptions& o, const std::string& default_output);

// --chat-template, --no-chat, --prompt-template.
void add_prompt_options(CLI::App* cmd, std::string& chat_template, bool& no_chat, std::string& prompt_template);

}  // namespace rhead::cli

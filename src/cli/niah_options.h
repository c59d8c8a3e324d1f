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

// --grow: resume a folder whose run had fewer keys (`what_grows` names how a grid grows).
void add_grow_flag(CLI::App* cmd, bool& grow, const std::string& what_grows);
void add_niah_options(CLI::App* cmd, NiahCliOptions& o, const std::string& default_output);

// --chat-template, --no-chat, --prompt-template.
void add_prompt_options(CLI::App* cmd, std::string& chat_template, bool& no_chat, std::string& prompt_template);

}  // namespace rhead::cli

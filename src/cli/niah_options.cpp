// NIAH command options.
#include "cli/niah_options.h"

#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "io/error.h"

namespace rhead::cli {

using nlohmann::json;

void add_prompt_options(CLI::App* cmd, std::string& chat_template, bool& no_chat, std::string& prompt_template) {
  cmd->add_option("--chat-template", chat_template, "force a chat prompt with this template: " + chat_template_names());
  cmd->add_flag("--no-chat", no_chat, "use the base prompt even if the model has a chat template");
  cmd->add_option("--prompt-template", prompt_template,
                  "prompt with {context} and {question} placeholders (default: the reference base prompt)");
}

void add_niah_options(CLI::App* cmd, NiahCliOptions& o, const std::string& default_output) {
  add_model_options(cmd, o.model);
  o.output = default_output;
  cmd->add_option("--needles", o.needles, "needle sets, JSONL {needle, question, real_needle[, haystack]} (default: built-in)");
  cmd->add_option("--haystack", o.haystack, "folder of .txt files used as the haystack (default: built-in filler text)");
  cmd->add_option("--lengths", o.lengths, "context lengths MIN:MAX:N, clipped to the model's context")->capture_default_str();
  cmd->add_option("--depths", o.depths, "number of needle depths from 0 to 100%")->capture_default_str()->check(at_least(1));
  add_prompt_options(cmd, o.chat_template, o.no_chat, o.prompt_template);
  cmd->add_option("--buffer", o.buffer, "tokens kept free for question and answer")->capture_default_str()->check(at_least(0));
  cmd->add_option("--max-new-tokens", o.max_new_tokens, "longest answer in tokens")->capture_default_str()->check(at_least(1));
  cmd->add_flag("--no-prefix-reuse", o.no_prefix_reuse, "prefill every prompt from scratch");
  cmd->add_option("-o,--output", o.output, "output directory (rerun with it to resume)")->capture_default_str();
  cmd->add_option("--shard", o.shard, "run shard I of N (I/N) of the grid; auto: this task of a Slurm job array")->capture_default_str();
  cmd->add_flag("-q,--quiet", o.quiet, "no progress bar");
}

namespace {
// "auto": this task's place in a Slurm job array, I = SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN
// of N = SLURM_ARRAY_TASK_COUNT (arrays with a step, --array=0-9:2, are not dense and refused).
std::string shard_from_slurm_env() {
  auto read = [](const char* name, bool required) -> long {
    const char* v = std::getenv(name);
    if (!v || !*v) {
      if (required) throw Error(std::string("--shard auto: ") + name + " is not set (not inside a Slurm job array)");
      return 0;
    }
    char* end = nullptr;
    const long x = std::strtol(v, &end, 10);
    if (*end != 0 || x < 0) throw Error(std::string("--shard auto: ") + name + "='" + v + "' is not a non-negative integer");
    return x;
  };
  const long id = read("SLURM_ARRAY_TASK_ID", true), count = read("SLURM_ARRAY_TASK_COUNT", true);
  const long min = read("SLURM_ARRAY_TASK_MIN", false);
  if (id < min || id - min >= count)
    throw Error("--shard auto: SLURM_ARRAY_TASK_ID " + std::to_string(id) + " is outside the array of " +
                std::to_string(count) + " tasks starting at " + std::to_string(min) + " (use a dense --array=0-N)");
  return std::to_string(id - min) + "/" + std::to_string(count);
}
}  // namespace

Shard parse_shard(const std::string& spec_in) {
  const std::string spec = spec_in == "auto" ? shard_from_slurm_env() : spec_in;
  // from_chars, not sscanf: an out-of-range number is an error, not undefined behaviour.
  auto whole_int = [](std::string_view text, int& out) {
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, out);
    return !text.empty() && ec == std::errc() && ptr == end;
  };
  int i = 0, n = 0;
  const size_t slash = spec.find('/');
  if (slash == std::string::npos || !whole_int(std::string_view(spec).substr(0, slash), i) ||
      !whole_int(std::string_view(spec).substr(slash + 1), n) || n < 1 || i < 0 || i >= n)
    throw Error("--shard '" + spec + "': expected I/N with 0 <= I < N");
  return {i, n};
}

PromptFormat prompt_format_from_options(const std::string& chat_template, bool no_chat, const std::string& prompt_template,
                                       const LoadedModel& lm) {
  PromptFormat format;
  const bool builtin_induction = lm.model->source == "builtin:induction";
  if (!prompt_template.empty() &&
      (prompt_template.find("{context}") == std::string::npos || prompt_template.find("{question}") == std::string::npos))
    throw Error("--prompt-template must contain {context} and {question}");
  if (!chat_template.empty()) {
    auto kind = chat_template_from_name(chat_template);
    if (!kind) throw Error("--chat-template '" + chat_template + "': unknown template (" + chat_template_names() + ")");
    format.chat = kind;
    if (!prompt_template.empty()) format.chat_user_template = prompt_template;
  } else if (!no_chat && prompt_template.empty() && !builtin_induction) {
    if (auto kind = lm.tokenizer->chat_template()) {
      format.chat = kind;
    } else if (!lm.tokenizer->chat_template_text().empty()) {
      throw Error(lm.model->source + ": the model's chat template is not one rhead knows; pass --chat-template NAME or --no-chat");
    }
  }
  if (!prompt_template.empty() && !format.chat) format.base_template = prompt_template;
  else if (builtin_induction && prompt_template.empty()) format.base_template = induction_prompt_template();
  return format;
}

NiahRunConfig make_niah_config(const NiahCliOptions& o, const LoadedModel& lm, DefaultNeedles defaults, json& settings) {
  NiahRunConfig c;
  const Model& model = *lm.model;
  const bool builtin_induction = model.source == "builtin:induction";
  std::string needles_desc;
  if (!o.needles.empty()) {
    c.needle_sets = read_needle_sets(o.needles);
    needles_desc = o.needles;
  } else if (builtin_induction) {
    for (const auto& n : induction_needles()) c.needle_sets.push_back({n, ""});
    needles_desc = "builtin:induction";
  } else if (defaults == DefaultNeedles::sandwich) {
    c.needle_sets.push_back({sandwich_needle(), ""});
    needles_desc = "builtin:sandwich";
  } else {
    for (const auto& n : builtin_needles()) c.needle_sets.push_back({n, ""});
    needles_desc = "builtin:facts";
  }
  c.default_haystack_dir = o.haystack;

  c.grid.lengths = parse_lengths(o.lengths);
  c.grid.depths = depths_from_count(o.depths);
  const int64_t ctx = o.model.n_ctx > 0 ? std::min<int64_t>(o.model.n_ctx, model.config.n_ctx_train) : model.config.n_ctx_train;
  if (int dropped = clip_lengths(c.grid.lengths, ctx))
    std::cerr << "warning: " << dropped << " context length(s) exceed the model's context of " << ctx
              << " tokens; clipped to " << ctx << "\n";
  for (int64_t l : c.grid.lengths)
    if (l <= o.buffer) throw Error("context length " + std::to_string(l) + " is not larger than --buffer " + std::to_string(o.buffer));

  c.format = prompt_format_from_options(o.chat_template, o.no_chat, o.prompt_template, lm);
  c.buffer = o.buffer;
  c.max_new_tokens = o.max_new_tokens;
  c.prefix_reuse = !o.no_prefix_reuse;

  json needles = json::array();
  for (const auto& s : c.needle_sets)
    needles.push_back({{"needle", s.needle.needle}, {"question", s.needle.question},
                       {"real_needle", s.needle.real_needle}, {"haystack", data_fingerprint(s.haystack_dir, "")}});
  json fingerprint = model_fingerprint(o.model, lm);
  fingerprint.update(json{{"needles", needles},
                          {"needles_file", data_fingerprint(o.needles, needles_desc)},
                          {"haystack", data_fingerprint(o.haystack, "builtin")},
                          {"prompt", c.format.chat ? chat_template_name(*c.format.chat) + ": " + c.format.chat_user_template
                                                   : c.format.base_template},
                          {"buffer", c.buffer},
                          {"max_new_tokens", c.max_new_tokens}});
  settings["fingerprint"] = fingerprint;
  settings["needles_source"] = needles_desc;
  settings["lengths"] = c.grid.lengths;
  settings["depths"] = c.grid.depths;
  settings["prefix_reuse"] = c.prefix_reuse;
  settings["kv_type"] = o.model.kv_type;
  return c;
}

void ProgressBar::update(int done, int total, int passed, double elapsed, const std::string& label) {
  if (!enabled_) return;
  const bool tty = isatty(2);
  if (!tty && done != total && elapsed - last_print_ < 10.0) return;
  last_print_ = elapsed;
  const double eta = done > 0 ? elapsed / done * (total - done) : 0.0;
  const int width = 24, filled = total > 0 ? width * done / total : width;
  std::string bar(filled, '#');
  bar += std::string(width - filled, '.');
  std::fprintf(stderr, "%s[%s] %d/%d  ETA %dm%02ds  accuracy %.2f  %s%s", tty ? "\r" : "", bar.c_str(), done, total,
               static_cast<int>(eta) / 60, static_cast<int>(eta) % 60, done ? static_cast<double>(passed) / done : 0.0,
               label.c_str(), tty ? "\033[K" : "\n");
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (enabled_ && isatty(2)) std::fprintf(stderr, "\n");
}

}  // namespace rhead::cli

// The setup shared by the commands and the Python module (see run_setup.h).
#include "experiments/run_setup.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "experiments/head_methods.h"
#include "io/atomic_file.h"
#include "io/builtin_data.h"
#include "io/error.h"
#include "io/file_identity.h"
#include "io/json.h"

namespace rhead {

using nlohmann::json;

namespace {
// --threads sets OpenMP's pool; BLAS always runs single-threaded inside rhead's threads.
void apply_threads(const ModelOptions& o) {
  if (o.threads > 0) {
    omp_set_num_threads(o.threads);
  }
}
}  // namespace

LoadedModel load_model_from_options(const ModelOptions& o) {
  apply_threads(o);
  LoadOptions lo;
  lo.tokenizer_path = o.tokenizer;
  return load_model(o.model, lo);
}

SessionOptions session_options(const ModelOptions& o) {
  if (o.kv_type != "f16" && o.kv_type != "f32" && o.kv_type != "q8_0")
    throw Error("kv_type '" + o.kv_type + "': expected f16, f32 or q8_0");
  SessionOptions so;
  so.n_ctx = o.n_ctx;
  so.kv_f16 = o.kv_type == "f16";
  so.kv_q8_0 = o.kv_type == "q8_0";
  so.prefill_chunk = o.prefill_chunk;
  so.device = o.device.empty() ? default_device() : parse_device(o.device);
  return so;
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
    if (*end != 0 || x < 0)
      throw Error(std::string("--shard auto: ") + name + "='" + v + "' is not a non-negative integer");
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

json model_fingerprint(const ModelOptions& o, const LoadedModel& lm) {
  const std::string& source = lm.model->source;
  json f = {{"model", source}, {"kv_type", o.kv_type}, {"device", device_name(session_options(o).device)}};
  // A model replaced at the same path (another quantization, other weights) is another run.
  if (source.rfind("builtin:", 0) != 0) f["model_file"] = model_identity(source);
  if (!o.tokenizer.empty()) f["tokenizer_file"] = content_digest(o.tokenizer);
  return f;
}

json data_fingerprint(const std::string& path, const std::string& builtin_name) {
  if (path.empty()) return builtin_name;
  return {{"path", path}, {"content", content_digest(path)}};
}

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

RunFolderOptions run_folder(const std::string& output, const std::string& shard, bool grow) {
  RunFolderOptions f;
  f.output_dir = output;
  f.shard = parse_shard(shard);
  f.grow_grid = grow;
  return f;
}

PromptFormat prompt_format_from_options(const std::string& chat_template, bool no_chat,
                                        const std::string& prompt_template, const LoadedModel& lm) {
  PromptFormat format;
  const bool builtin_induction = lm.model->source == "builtin:induction";
  if (!prompt_template.empty() && (prompt_template.find("{context}") == std::string::npos ||
                                   prompt_template.find("{question}") == std::string::npos))
    throw Error("--prompt-template must contain {context} and {question}");
  if (!chat_template.empty()) {
    format.chat = choose_chat_template(*lm.tokenizer, chat_template, false);
    if (!prompt_template.empty()) format.chat_user_template = prompt_template;
  } else if (!no_chat && prompt_template.empty() && !builtin_induction) {
    if (auto kind = lm.tokenizer->chat_template()) {
      format.chat = kind;
    } else if (!lm.tokenizer->chat_template_text().empty()) {
      throw Error(lm.model->source +
                  ": the model's chat template is not one rhead knows; pass --chat-template NAME or --no-chat");
    }
  }
  if (!prompt_template.empty() && !format.chat)
    format.base_template = prompt_template;
  else if (builtin_induction && prompt_template.empty())
    format.base_template = induction_prompt_template();
  return format;
}

NiahRunConfig make_niah_config(const NiahOptions& o, const LoadedModel& lm, DefaultNeedles defaults, json& settings) {
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
  const int64_t ctx =
      o.model.n_ctx > 0 ? std::min<int64_t>(o.model.n_ctx, model.config.n_ctx_train) : model.config.n_ctx_train;
  if (int dropped = clip_lengths(c.grid.lengths, ctx))
    std::cerr << "warning: " << dropped << " context length(s) exceed the model's context of " << ctx
              << " tokens; clipped to " << ctx << "\n";
  for (int64_t l : c.grid.lengths)
    if (l <= o.buffer)
      throw Error("context length " + std::to_string(l) + " is not larger than --buffer " + std::to_string(o.buffer));

  c.format = prompt_format_from_options(o.chat_template, o.no_chat, o.prompt_template, lm);
  c.buffer = o.buffer;
  c.max_new_tokens = o.max_new_tokens;
  c.prefix_reuse = !o.no_prefix_reuse;

  json needles = json::array();
  for (const auto& s : c.needle_sets)
    needles.push_back({{"needle", s.needle.needle},
                       {"question", s.needle.question},
                       {"real_needle", s.needle.real_needle},
                       {"haystack", data_fingerprint(s.haystack_dir, "")}});
  json fingerprint = model_fingerprint(o.model, lm);
  fingerprint.update(
      json{{"needles", needles},
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

ProgressBar::ProgressBar(bool enabled)
    : ProgressBar(enabled, isatty(2) != 0, [](const std::string& text) {
        std::fputs(text.c_str(), stderr);
        std::fflush(stderr);
      }) {}

ProgressBar::ProgressBar(bool enabled, bool tty, std::function<void(const std::string&)> write)
    : enabled_(enabled), tty_(tty), write_(std::move(write)) {}

void ProgressBar::update(int done, int total, int passed, double elapsed, const std::string& label) {
  if (!enabled_) return;
  if (!tty_ && done != total && elapsed - last_print_ < 10.0) return;
  last_print_ = elapsed;
  const double eta = done > 0 ? elapsed / done * (total - done) : 0.0;
  const int width = 24, filled = total > 0 ? width * done / total : width;
  std::string bar(filled, '#');
  bar += std::string(width - filled, '.');
  char head[160];
  std::snprintf(head, sizeof head, "%s[%s] %d/%d  ETA %dm%02ds  accuracy %.2f  ", tty_ ? "\r" : "", bar.c_str(), done,
                total, static_cast<int>(eta) / 60, static_cast<int>(eta) % 60,
                done ? static_cast<double>(passed) / done : 0.0);
  write_(head + label + (tty_ ? "\033[K" : "\n"));
}

void ProgressBar::finish() {
  if (enabled_ && tty_) write_("\n");
}

DetectSummary run_detect_from_options(const LoadedModel& lm, const NiahOptions& o, DetectOptions d) {
  json settings;
  NiahRunConfig config = make_niah_config(o, lm, DefaultNeedles::builtin_facts, settings);
  const RunFolderOptions folder = run_folder(o.output, o.shard, o.grow);  // a bad --shard fails first
  settings["shard"] = o.shard;
  config.qrhead = d.qrhead;
  config.lookback = d.lookback;
  if (d.qrhead || d.lookback) {
    // The methods change every result line: a folder is resumed only with the same ones.
    json methods = json::array();
    if (d.qrhead) methods.push_back(kQrheadMethod);
    if (d.lookback) methods.push_back(kLookbackMethod);
    settings["fingerprint"]["niah_methods"] = methods;
  }
  if (d.qrhead) settings["qrhead"] = {{"document_tokens", kQrheadDocTokens}, {"null_question", kQrheadNullQuestion}};
  NiahRunner runner(lm, session_options(o.model), config);
  static_cast<RunFolderOptions&>(d) = folder;
  d.settings = settings;
  return run_detect(runner, d);
}

DetectSummary run_detect_with_methods(const LoadedModel& lm, const NiahOptions& o, DetectOptions d,
                                      const std::string& method_list, nlohmann::json* agreement) {
  const DetectMethods methods = parse_detect_methods(method_list);
  d.qrhead = methods.qrhead;
  d.lookback = methods.lookback;
  DetectSummary s = run_detect_from_options(lm, o, d);
  json pairs;
  if (methods.any()) {
    pairs = write_method_scores(o.output, lm, methods, SyntheticOptions{});
    const std::string summary_path = o.output + "/summary.json";
    json summary = read_json_file(summary_path);
    summary["methods"] = pairs;
    write_file_atomic(summary_path, summary.dump(2) + "\n");
  }
  if (agreement) *agreement = pairs;
  return s;
}

std::vector<int32_t> haystack_calibration_tokens(const LoadedModel& lm, const std::string& haystack_dir) {
  const int64_t n = std::min<int64_t>(lm.model->config.n_ctx_train, 1024);
  const std::string text =
      haystack_dir.empty() ? builtin_haystack(n) : repeat_to_words(read_haystack_dir(haystack_dir), n);
  std::vector<int32_t> ids = lm.tokenizer->encode(text, true, false);
  if (static_cast<int64_t>(ids.size()) > n) ids.resize(n);
  return ids;
}

NiahCausalSummary run_niah_from_options(const LoadedModel& lm, const NiahOptions& o, const NiahCausalRunOptions& r,
                                        const std::function<void(int done, int total, const std::string& mask,
                                                                 const TestResult& last, double elapsed_s)>& progress,
                                        NiahCausalOptions* options_out) {
  lm.require_tokenizer();
  json settings;
  NiahRunConfig config = make_niah_config(o, lm, DefaultNeedles::sandwich, settings);
  const RunFolderOptions folder = run_folder(o.output, o.shard, o.grow);  // a bad --shard fails first
  settings["shard"] = o.shard;
  bool kv_sweep = false;
  ResolvedMasks masks = resolve_conditions(
      r.masks, r.kv, lm, r.baseline, [&] { return haystack_calibration_tokens(lm, o.haystack); }, &kv_sweep);
  record_mask_settings(r.masks, masks, settings);

  NiahCausalOptions c;
  static_cast<RunFolderOptions&>(c) = folder;
  c.settings = settings;
  c.masks = masks.settings;
  c.sweep = !r.masks.sweep.empty();
  c.kv_sweep = kv_sweep;
  c.sink_heads = sink_heads_for(masks.scores ? &*masks.scores : nullptr, r.sink_heads);
  c.settings["sink_heads"] = head_keys(c.sink_heads);
  // support_share: copies by the top heads of the scores, else by every head.
  c.support_heads = support_heads_for(masks.scores ? &masks.scores->mean : nullptr, r.support_heads, lm.model->config);
  c.settings["support_heads"] = head_keys(c.support_heads);
  c.progress = progress;
  NiahCausalSummary s = run_niah_causal(lm, session_options(o.model), config, c);
  if (options_out) *options_out = c;
  return s;
}

}  // namespace rhead

// `rhead qa -m MODEL [--data FILE.jsonl]`: extractive QA (SQuAD exact match and F1) with
// and without head masks.
#include <filesystem>
#include <iostream>
#include <map>

#include "cli/causal_options.h"
#include "cli/command.h"
#include "cli/niah_options.h"
#include "io/error.h"
#include "niah/detect.h"
#include "niah/qa_task.h"
#include "report/drawing.h"
#include "report/plots.h"

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
  MaskCliOptions masks;
  KvCliOptions kv;
  bool no_baseline = false;
  std::string output = "runs/qa";
  std::string shard = "0/1";
  bool quiet = false;
};

PromptFormat qa_format(const QaOptions& o, const Tokenizer& tok) {
  PromptFormat f;
  f.base_template = o.prompt_template;
  f.chat_user_template = o.prompt_template;
  if (!o.chat_template.empty()) {
    f.chat = chat_template_from_name(o.chat_template);
    if (!f.chat) throw Error("--chat-template '" + o.chat_template + "': unknown template (llama2, mistral, chatml, llama3)");
  } else if (!o.no_chat) {
    f.chat = tok.chat_template();
  }
  if (o.prompt_template.find("{context}") == std::string::npos || o.prompt_template.find("{question}") == std::string::npos)
    throw Error("--prompt-template must contain {context} and {question}");
  return f;
}

void run(const QaOptions& o) {
  LoadedModel lm = load_model_from_options(o.model);
  if (!lm.tokenizer) throw Error(o.model.model + ": model has no tokenizer (pass --tokenizer)");
  const Tokenizer& tok = *lm.tokenizer;
  const std::vector<QaItem> items =
      o.data.empty() ? parse_qa_jsonl(builtin_qa_jsonl(), "builtin:qa_small") : read_qa_items(o.data);
  const PromptFormat format = qa_format(o, tok);
  bool kv_sweep = false;
  ResolvedMasks masks = resolve_conditions(o.masks, o.kv, lm, !o.no_baseline, [&] {
    std::string text;
    for (const auto& it : items) text += it.context + "\n";
    std::vector<int32_t> ids = tok.encode(text, true, false);
    ids.resize(std::min<size_t>(ids.size(), std::min<int64_t>(lm.model->config.n_ctx_train, 1024)));
    return ids;
  }, &kv_sweep);

  json settings;
  settings["fingerprint"] = {{"model", lm.model->source},
                             {"data", o.data.empty() ? "builtin:qa_small" : o.data},
                             {"prompt", format.chat ? chat_template_name(*format.chat) + ": " + o.prompt_template
                                                    : o.prompt_template},
                             {"max_new_tokens", o.max_new_tokens}};
  settings["shard"] = o.shard;
  record_mask_settings(o.masks, masks, settings);

  std::vector<std::string> keys;
  std::vector<std::pair<size_t, size_t>> what;  // (mask, item)
  for (size_t m = 0; m < masks.settings.size(); ++m)
    for (size_t i = 0; i < items.size(); ++i) {
      keys.push_back(masks.settings[m].label + "|" + std::to_string(i) + ":" + items[i].id);
      what.emplace_back(m, i);
    }
  KvSessions sessions{lm.model, session_options(o.model)};
  const std::vector<json> lines = run_items_with_progress(
      o.output, o.shard, settings, o.quiet, keys,
      [&](size_t k, bool& correct) {
        const MaskSetting& m = masks.settings[what[k].first];
        const QaItem& it = items[what[k].second];
        const QaAnswer a = run_qa_item(sessions.get(m.kv), tok, format, it, &m.mask, o.max_new_tokens);
        correct = a.exact_match > 0;
        json line{{"item_id", it.id},
                  {"question", it.question},   {"answers", it.answers},
                  {"prediction", a.prediction}, {"exact_match", a.exact_match},
                  {"f1", a.f1},                {"prompt_tokens", a.prompt_tokens},
                  {"generated_tokens", a.generated_tokens}, {"context_tokens_dropped", a.context_tokens_dropped},
                  {"seconds", a.seconds}};
        add_mask_fields(m, line);
        add_kv_fields(m.kv, lm.model->config.head_dim, o.model.kv_type == "f16" ? 2 : 4, a.prompt_tokens, line);
        return line;
      });

  // Per mask: EM and F1 over the items in the directory.
  struct Agg { json mask; int n = 0; double em = 0, f1 = 0, kv_kept = 0, query_kept = 0; };
  std::map<std::string, Agg> by_mask;
  for (const auto& l : lines) {
    Agg& a = by_mask[l.value("mask", std::string("none"))];
    if (a.n == 0) {
      a.mask = mask_from_line(l);
      if (l.contains("kv_policy") && l["kv_policy"].value("window", 0) > 0) a.mask["kv_policy"] = l["kv_policy"];
    }
    ++a.n;
    a.kv_kept += l.value("kv_cache", json::object()).value("kv_kept_fraction", 1.0);
    a.query_kept += l.value("kv_cache", json::object()).value("query_kept_fraction", 1.0);
    a.em += l.value("exact_match", 0.0);
    a.f1 += l.value("f1", 0.0);
  }
  std::vector<MaskOutcome> outcomes;
  json rows = json::array();
  std::vector<json> kv_conditions;
  std::cout << " mask                          heads  items  exact match     F1  KV kept/q  KV kept/kv\n";
  for (const auto& [label, a] : by_mask) {
    const double em = 100.0 * a.em / a.n, f1 = 100.0 * a.f1 / a.n;
    char buf[256];
    const double kv_kept = a.kv_kept / a.n, query_kept = a.query_kept / a.n;
    std::snprintf(buf, sizeof buf, " %-29s %5d  %5d  %11.1f  %5.1f  %8.1f%%  %9.1f%%\n", label.c_str(),
                  a.mask.value("k", 0), a.n, em, f1, 100 * query_kept, 100 * kv_kept);
    std::cout << buf;
    json row = a.mask;
    row["items"] = a.n;
    row["exact_match"] = em;
    row["f1"] = f1;
    row["kv_kept_fraction"] = kv_kept;
    row["query_kept_fraction"] = query_kept;
    if (a.mask.value("kind", std::string()) == "none")
      kv_conditions.push_back({{"kv_policy", a.mask.value("kv_policy", json::object())},
                               {"kv_kept_fraction", kv_kept},
                               {"query_kept_fraction", query_kept},
                               {"mean_score", f1}});
    rows.push_back(row);
    MaskOutcome oc;
    oc.label = label;
    oc.mask = a.mask;
    oc.tests = a.n;
    oc.mean_score = f1;
    outcomes.push_back(oc);
  }
  json summary = {{"model", model_info_json(*lm.model)}, {"settings", settings}, {"masks", rows}};
  const json sweep = o.masks.sweep.empty() ? json() : sweep_json(outcomes);
  if (!sweep.is_null()) {
    summary["sweep_f1"] = sweep;
    write_file_atomic(o.output + "/sweep.json", sweep.dump(2) + "\n");
    report::LinePlotSpec spec;
    spec.title = std::filesystem::path(lm.model->source).filename().string() + ": QA F1 when masking K heads";
    spec.x_label = "number of masked heads K";
    spec.y_label = "F1";
    spec.y_min = 0;
    spec.y_max = 100;
    size_t i = 0;
    for (const char* name : {"top", "random"}) {
      if (!sweep.contains(name)) continue;
      report::LineSeries s;
      s.name = std::string(name) == "top" ? "top-K retrieval heads" : "random K heads";
      for (const auto& p : sweep[name]) s.points.emplace_back(p[0].get<double>(), p[1].get<double>());
      s.color = report::series_color(i++);
      s.dashed = std::string(name) == "random";
      spec.series.push_back(s);
    }
    const report::Drawing d = report::line_plot(spec);
    report::save_figure(d, o.output + "/sweep.png");
    report::save_figure(d, o.output + "/sweep.svg");
  }
  if (kv_sweep) {
    const std::vector<KvSweepPoint> points = kv_sweep_points(kv_conditions);
    write_kv_sweep(o.output, points, std::filesystem::path(lm.model->source).filename().string() + ": QA F1 vs KV cache kept", "F1");
    summary["kv_sweep"] = kv_sweep_json(points);
    std::cout << "\n KV sweep: QA F1 by KV cache kept\n" << format_kv_sweep(points, "F1");
  }
  write_file_atomic(o.output + "/summary.json", summary.dump(2) + "\n");
  std::cout << "\nwrote " << o.output << "/{results.jsonl, summary.json" << (sweep.is_null() ? "" : ", sweep.json, sweep.png/svg")
            << "}\n";
}

CommandRegistrar reg("qa", [](CLI::App& app) {
  auto o = std::make_shared<QaOptions>();
  auto* cmd = app.add_subcommand(
      "qa", "extractive QA (SQuAD exact match / F1) with and without head masks (default mask mode uniform, phase decode)");
  add_model_options(cmd, o->model);
  cmd->add_option("--data", o->data,
                  "JSONL, one {\"context\", \"question\", \"answers\": [...]} a line (default: the built-in qa_small set)");
  cmd->add_option("--prompt-template", o->prompt_template,
                  "prompt with {context} and {question}; the answer is the text generated up to the first newline")
      ->capture_default_str();
  cmd->add_option("--chat-template", o->chat_template, "wrap the prompt as a user message of this chat template");
  cmd->add_flag("--no-chat", o->no_chat, "never use the model's chat template");
  cmd->add_option("--max-new-tokens", o->max_new_tokens, "longest answer in tokens")->capture_default_str()->check(CLI::PositiveNumber);
  add_mask_options(cmd, o->masks);
  add_kv_options(cmd, o->kv);
  add_kv_sweep_options(cmd, o->kv);
  cmd->add_flag("--no-baseline", o->no_baseline, "do not run the unmasked model");
  cmd->add_option("-o,--output", o->output, "output directory (rerun with it to resume)")->capture_default_str();
  cmd->add_option("--shard", o->shard, "run shard I of N (I/N) of the items; auto: this task of a Slurm job array")->capture_default_str();
  cmd->add_flag("-q,--quiet", o->quiet, "no progress bar");
  cmd->callback([o] { run(*o); });
});

}  // namespace
}  // namespace rhead::cli

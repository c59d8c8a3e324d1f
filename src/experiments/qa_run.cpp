// The qa experiment and its run outputs: per-mask EM / F1, the sweep plot and the KV sweep.
#include "experiments/qa_run.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include "support/explain.h"
#include "experiments/causal.h"
#include "report/kv_sweep.h"
#include "experiments/detect.h"
#include "experiments/qa_task.h"
#include "records/task_records.h"
#include "conditions/kv_conditions.h"
#include "report/drawing.h"
#include "report/plots.h"

namespace rhead {

using nlohmann::json;

namespace {

// Every condition x QA item.
class QaExperiment : public Experiment {
 public:
  QaExperiment(const LoadedModel& model, const SessionOptions& session, const std::vector<QaItem>& items,
               const QaRunOptions& o)
      : model_(model), items_(items), o_(o), run_(model, session, o.run, numbered_item_keys(items)) {}
  std::string kind() const override { return "qa"; }
  json run_record() const override {
    return {{"model", model_info_json(*model_.model)},
            {"settings", o_.run.settings},
            {"sweep", o_.sweep},
            {"kv_sweep", o_.kv_sweep}};
  }
  std::vector<std::string> keys() const override { return run_.keys(); }
  void check_lines(const RunDir& dir) const override { dir.read_lines(qa_line_from_json); }
  json run_key(size_t k) override {
    const MaskSetting& m = run_.condition(k);
    const QaItem& it = items_[run_.item(k)];
    const QaAnswer a =
        run_qa_item(run_.session(m), *model_.tokenizer, o_.format, it, &m.mask, o_.max_new_tokens, o_.support_heads);
    run_.count_answer(a.exact_match > 0);
    QaLine line;
    static_cast<ItemLine&>(line) =
        run_.item_line(m, it.id, it.question, a.prompt_tokens, a.generated_tokens, a.seconds);
    line.answers = it.answers;
    line.prediction = a.prediction;
    line.exact_match = a.exact_match;
    line.f1 = a.f1;
    line.context_tokens_dropped = a.context_tokens_dropped;
    if (a.support_share >= 0) line.support_share = a.support_share;
    return to_json(line);
  }
  RunDir run() { return run_.run(*this); }

 private:
  const LoadedModel& model_;
  const std::vector<QaItem>& items_;
  const QaRunOptions& o_;
  ItemRun run_;
};

}  // namespace

RunDir run_qa(const LoadedModel& model, const SessionOptions& session, const std::vector<QaItem>& items,
              const QaRunOptions& options) {
  QaExperiment e(model, session, items, options);
  return e.run();
}

std::string write_qa_outputs(const RunDir& dir) {
  const json& run = dir.record();
  const std::string model_name =
      std::filesystem::path(run.value("model", json::object()).value("path", std::string("model"))).filename().string();
  // Per mask: EM and F1 over the items in the directory.
  struct Agg {
    json mask;
    int n = 0;
    double em = 0, f1 = 0, kv_kept = 0, query_kept = 0;
    SupportSummary support;  // passed: F1 > 0.5
  };
  std::map<std::string, Agg> by_mask;
  for (const QaLine& l : dir.read_lines(qa_line_from_json)) {
    Agg& a = by_mask[l.condition.mask];
    if (a.n == 0) a.mask = l.condition.summary_mask();
    ++a.n;
    a.kv_kept += l.condition.kv_kept_fraction();
    a.query_kept += l.condition.query_kept_fraction();
    a.em += l.exact_match;
    a.f1 += l.f1;
    if (l.support_share) a.support.add(*l.support_share, l.f1 > kQaPassF1);
  }
  std::ostringstream out;
  std::vector<MaskOutcome> outcomes;
  json rows = json::array();
  std::vector<json> kv_conditions;
  out << " mask                          heads  items  exact match     F1  KV kept/q  KV kept/kv\n";
  for (const auto& [label, a] : by_mask) {
    const double em = 100.0 * a.em / a.n, f1 = 100.0 * a.f1 / a.n;
    char buf[256];
    const double kv_kept = a.kv_kept / a.n, query_kept = a.query_kept / a.n;
    std::snprintf(buf, sizeof buf, " %-29s %5d  %5d  %11.1f  %5.1f  %8.1f%%  %9.1f%%\n", label.c_str(),
                  a.mask.value("k", 0), a.n, em, f1, 100 * query_kept, 100 * kv_kept);
    out << buf;
    json row = a.mask;
    row["items"] = a.n;
    row["exact_match"] = em;
    row["f1"] = f1;
    row["kv_kept_fraction"] = kv_kept;
    row["query_kept_fraction"] = query_kept;
    if (!a.support.empty()) {
      auto number_or_null = [](double v) { return std::isnan(v) ? json() : json(v); };
      row["support_share_passed"] = number_or_null(a.support.mean_passed());
      row["support_share_failed"] = number_or_null(a.support.mean_failed());
      row["support_auroc"] = number_or_null(a.support.auroc());
    }
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
  std::vector<std::pair<std::string, SupportSummary>> support_rows;
  for (const auto& [label, a] : by_mask) support_rows.push_back({label, a.support});
  out << support_table(support_rows);
  json summary = {{"model", run.value("model", json::object())},
                  {"settings", run.value("settings", json::object())},
                  {"masks", rows}};
  const json sweep = run.value("sweep", false) ? sweep_json(outcomes) : json();
  if (!sweep.is_null()) {
    summary["sweep_f1"] = sweep;
    dir.write_file("sweep.json", sweep.dump(2) + "\n");
    report::LinePlotSpec spec;
    spec.title = model_name + ": QA F1 when masking K heads";
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
    report::save_figure(d, dir.file("sweep.png"));
    report::save_figure(d, dir.file("sweep.svg"));
  }
  if (run.value("kv_sweep", false)) {
    const std::vector<KvSweepPoint> points = kv_sweep_points(kv_conditions);
    write_kv_sweep(dir.path(), points, model_name + ": QA F1 vs KV cache kept", "F1");
    summary["kv_sweep"] = kv_sweep_json(points);
    out << "\n KV sweep: QA F1 by KV cache kept\n" << format_kv_sweep(points, "F1");
  }
  dir.write_file("summary.json", summary.dump(2) + "\n");
  return out.str();
}

}  // namespace rhead

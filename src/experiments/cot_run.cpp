// The cot experiment and its run outputs: accuracy per mask and prompting style.
#include "experiments/cot_run.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include "experiments/detect.h"
#include "records/task_records.h"

namespace rhead {

using nlohmann::json;

namespace {

// Every condition x prompting style x arithmetic item.
class CotExperiment : public Experiment {
 public:
  CotExperiment(const LoadedModel& model, const SessionOptions& session, const std::vector<CotItem>& items,
                const CotRunOptions& o)
      : model_(model), items_(items), o_(o), run_(model, session, o.run, item_keys(items, o.styles)) {}
  std::string kind() const override { return "cot"; }
  json run_record() const override {
    return {{"model", model_info_json(*model_.model)}, {"settings", o_.run.settings}};
  }
  std::vector<std::string> keys() const override { return run_.keys(); }
  void check_lines(const RunDir& dir) const override { dir.read_lines(cot_line_from_json); }
  json run_key(size_t k) override {
    const MaskSetting& m = run_.condition(k);
    const CotStyle style = o_.styles[run_.item(k) / items_.size()];
    const CotItem& it = items_[run_.item(k) % items_.size()];
    // Answer-only needs a few tokens: "The answer is N."
    const int max_new = style == CotStyle::answer_only ? std::min(o_.max_new_tokens, 16) : o_.max_new_tokens;
    const CotAnswer a = run_cot_item(run_.session(m), *model_.tokenizer, o_.format,
                                     cot_prompt_text(o_.shots, it.question, style), it, style, &m.mask, max_new);
    run_.count_answer(a.correct);
    CotLine line;
    static_cast<ItemLine&>(line) =
        run_.item_line(m, it.id, it.question, a.prompt_tokens, a.generated_tokens, a.seconds);
    line.style = cot_style_name(style);
    line.gold = it.gold;
    line.completion = a.completion;
    line.predicted = a.predicted;
    line.correct = a.correct;
    return to_json(line);
  }
  RunDir run() { return run_.run(*this); }

 private:
  // Style-major: "style|index:id".
  static std::vector<std::string> item_keys(const std::vector<CotItem>& items, const std::vector<CotStyle>& styles) {
    std::vector<std::string> keys;
    for (CotStyle s : styles)
      for (std::string& k : numbered_item_keys(items, std::string(cot_style_name(s)) + "|"))
        keys.push_back(std::move(k));
    return keys;
  }

  const LoadedModel& model_;
  const std::vector<CotItem>& items_;
  const CotRunOptions& o_;
  ItemRun run_;
};

}  // namespace

RunDir run_cot(const LoadedModel& model, const SessionOptions& session, const std::vector<CotItem>& items,
               const CotRunOptions& options) {
  CotExperiment e(model, session, items, options);
  return e.run();
}

std::string write_cot_outputs(const RunDir& dir) {
  const json& run = dir.record();
  // Accuracy per mask and style.
  struct Agg {
    json mask;
    std::map<std::string, std::pair<int, int>> by_style;
    double kv_kept = 0, query_kept = 0;
    int n = 0;
  };  // style -> (correct, n)
  std::map<std::string, Agg> by_mask;
  for (const CotLine& l : dir.read_lines(cot_line_from_json)) {
    Agg& a = by_mask[l.condition.mask];
    if (a.mask.is_null()) a.mask = l.condition.summary_mask();
    a.kv_kept += l.condition.kv_kept_fraction();
    a.query_kept += l.condition.query_kept_fraction();
    a.n += 1;
    auto& c = a.by_style[l.style];
    c.first += l.correct;
    c.second += 1;
  }
  std::ostringstream out;
  json rows = json::array();
  out << " mask                          heads  style        items  accuracy\n";
  for (const auto& [label, a] : by_mask)
    for (const auto& [style, c] : a.by_style) {
      char buf[256];
      std::snprintf(buf, sizeof buf, " %-29s %5d  %-11s  %5d  %7.1f%%\n", label.c_str(), a.mask.value("k", 0),
                    style.c_str(), c.second, 100.0 * c.first / c.second);
      out << buf;
      json row = a.mask;
      row["style"] = style;
      row["items"] = c.second;
      row["correct"] = c.first;
      row["accuracy"] = static_cast<double>(c.first) / c.second;
      row["kv_kept_fraction"] = a.kv_kept / a.n;
      row["query_kept_fraction"] = a.query_kept / a.n;
      rows.push_back(row);
    }
  json summary = {{"model", run.value("model", json::object())},
                  {"settings", run.value("settings", json::object())},
                  {"results", rows}};
  dir.write_file("summary.json", summary.dump(2) + "\n");
  return out.str();
}

}  // namespace rhead

// CoT run outputs: accuracy per mask and prompting style.
#include "experiments/cot_run.h"

#include <cstdio>
#include <map>
#include <sstream>

#include "tasks/task_records.h"

namespace rhead {

using nlohmann::json;

std::string write_cot_outputs(const RunDir& dir) {
  const json& run = dir.record();
  // Accuracy per mask and style.
  struct Agg { json mask; std::map<std::string, std::pair<int, int>> by_style; double kv_kept = 0, query_kept = 0; int n = 0; };  // style -> (correct, n)
  std::map<std::string, Agg> by_mask;
  const std::string results = dir.file("results.jsonl");
  for (size_t i = 0; i < dir.lines().size(); ++i) {
    const CotLine l = cot_line_from_json(dir.lines()[i], results + ":" + std::to_string(i + 1));
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
  json summary = {{"model", run.value("model", json::object())}, {"settings", run.value("settings", json::object())},
                  {"results", rows}};
  dir.write_file("summary.json", summary.dump(2) + "\n");
  return out.str();
}

}  // namespace rhead

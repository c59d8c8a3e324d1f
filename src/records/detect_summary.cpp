// Detect summary: head statistics, JSON writer and strict reader.
#include "records/detect_summary.h"

#include <algorithm>

#include "io/checked.h"
#include "io/error.h"
#include "io/json.h"
#include "io/json_fields.h"

namespace rhead {

using nlohmann::json;

namespace {

// The summary's own figures; "model" (a path or an object), the shape, the heads and the KV
// groups are written and read beside them.
template <class Fields, class Summary>
void summary_fields(Fields& f, Summary& s) {
  f("settings", s.settings, kOptional);
  f("tests", s.tests, kOptional);
  f("counted", s.counted, kOptional);
  f("niah_accuracy", s.niah_accuracy, kOptional);
  f("mean_rouge_recall", s.mean_rouge_recall, kOptional);
  f("count_above_0_1", s.count_above_0_1, kOptional);
  f("share_above_0_1", s.share_above_0_1, kOptional);
  f("stability", s.stability, kOmitEmpty);
  f("until_stable", s.until_stable, kOmitEmpty);
}

}  // namespace

json DetectSummary::to_json() const {
  json j;
  j["model"] = model;
  JsonWriter w(j);
  summary_fields(w, *this);
  j["n_layer"] = n_layer;
  j["n_head"] = n_head;
  j["n_kv_head"] = n_kv_head;
  // No counted test: the head scores are undefined, so the file says so and ranks nothing.
  if (counted == 0) {
    j["no_counted_tests"] = true;
    j["note"] = kNoCountedTestsNote;
  }
  json heads = json::array();
  for (const auto& h : this->heads)
    heads.push_back({{"layer", h.id.layer}, {"head", h.id.head}, {"mean", h.mean}, {"frequency", h.frequency}});
  j["heads"] = heads;
  // GQA view: each KV group's strongest query head and the group's summed score.
  json groups = json::array();
  if (n_kv_head > 0 && n_head % n_kv_head == 0) {
    const int g_size = n_head / n_kv_head;
    HeadGrid<double> mean_of(n_layer, n_head);
    for (const auto& h : this->heads) mean_of[h.id] = h.mean;
    for (int l = 0; l < n_layer; ++l)
      for (int g = 0; g < n_kv_head; ++g) {
        double sum = 0, best = 0;
        int best_head = g * g_size;
        for (int h = g * g_size; h < (g + 1) * g_size; ++h) {
          sum += mean_of.at(l, h);
          if (mean_of.at(l, h) > best) best = mean_of.at(l, h), best_head = h;
        }
        groups.push_back({{"layer", l}, {"kv_head", g}, {"sum", sum}, {"max", best}, {"max_head", best_head}});
      }
  }
  j["kv_groups"] = groups;
  return j;
}

DetectSummary detect_summary_from_json(const json& j, const std::string& where) {
  if (!j.is_object()) fail(where, "expected a JSON object");
  DetectSummary s;
  if (const json* m = json_field(j, "model", where)) {
    if (m->is_string())
      s.model = {{"path", *m}};  // some writers store only the model path
    else if (m->is_object())
      s.model = *m;
    else
      fail(where, "field 'model' is not an object");
  }
  JsonReader r(j, where);
  summary_fields(r, s);
  // Earlier files keep the shape in "model" only.
  const std::string mw = where + ": model";
  s.n_layer = json_int_field(j, "n_layer", where, json_int_field(s.model, "n_layer", mw, 0));
  s.n_head = json_int_field(j, "n_head", where, json_int_field(s.model, "n_head", mw, 0));
  s.n_kv_head = json_int_field(j, "n_kv_head", where, json_int_field(s.model, "n_kv_head", mw, 0));
  if (const json* heads = json_field(j, "heads", where)) {
    if (!heads->is_array()) fail(where, "field 'heads' is not a list");
    const std::string hw = where + ": heads";
    for (const auto& h : *heads) {
      HeadStat st;
      st.id.layer = json_int(json_required(h, "layer", hw), hw, "field 'layer'", 0, kMaxModelCount);
      st.id.head = json_int(json_required(h, "head", hw), hw, "field 'head'", 0, kMaxModelCount);
      st.mean = json_number_field(h, "mean", hw);
      st.frequency = json_number_field(h, "frequency", hw, 0.0);
      s.heads.push_back(st);
    }
  }
  return s;
}

DetectSummary summarize(const std::vector<TestResult>& results, int n_layer, int n_head, int n_kv_head) {
  DetectSummary s;
  s.n_layer = n_layer;
  s.n_head = n_head;
  s.n_kv_head = n_kv_head;
  s.tests = static_cast<int>(results.size());
  HeadGrid<double> sum(n_layer, n_head);
  HeadGrid<int> fired(n_layer, n_head);
  double recall_sum = 0;
  for (const auto& r : results) {
    recall_sum += r.rouge_recall;
    if (!r.counted) continue;
    ++s.counted;
    for (const auto& [key, v] : r.head_scores) {
      const HeadId id = HeadId::parse(key, "result " + r.test_id);
      if (id.layer >= n_layer || id.head >= n_head)
        throw Error("result " + r.test_id + " names head '" + key + "' outside the model");
      sum[id] += v;
      if (v > 0) fired[id] += 1;
    }
  }
  s.niah_accuracy = s.tests ? static_cast<double>(s.counted) / s.tests : 0.0;
  s.mean_rouge_recall = s.tests ? recall_sum / s.tests : 0.0;
  for (size_t i = 0; i < sum.size(); ++i) {
    HeadStat st{sum.head_at(i), 0.0, 0.0};
    if (s.counted) {
      st.mean = sum[i] / s.counted;
      st.frequency = static_cast<double>(fired[i]) / s.counted;
    }
    if (st.mean > kRetrievalThreshold) ++s.count_above_0_1;
    s.heads.push_back(st);
  }
  std::stable_sort(s.heads.begin(), s.heads.end(),
                   [](const HeadStat& a, const HeadStat& b) { return a.mean > b.mean; });
  if (s.counted == 0) s.heads.clear();  // no counted test: no score, no ranking
  s.share_above_0_1 = s.heads.empty() ? 0.0 : static_cast<double>(s.count_above_0_1) / s.heads.size();
  return s;
}
}  // namespace rhead

// Detection run: resume, shards, aggregate files, summary.
#include "niah/detect.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "io/checked.h"
#include "io/error.h"
#include "io/json.h"
#include "io/mapped_file.h"
#include "experiments/experiment.h"
#include "io/atomic_file.h"

namespace rhead {

namespace fs = std::filesystem;
using nlohmann::json;

json DetectSummary::to_json() const {
  json j;
  j["model"] = model;
  j["settings"] = settings;
  j["n_layer"] = n_layer;
  j["n_head"] = n_head;
  j["n_kv_head"] = n_kv_head;
  j["tests"] = tests;
  j["counted"] = counted;
  j["niah_accuracy"] = niah_accuracy;
  j["mean_rouge_recall"] = mean_rouge_recall;
  j["count_above_0_1"] = count_above_0_1;
  j["share_above_0_1"] = share_above_0_1;
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
    if (m->is_string()) s.model = {{"path", *m}};  // some writers store only the model path
    else if (m->is_object()) s.model = *m;
    else fail(where, "field 'model' is not an object");
  }
  if (const json* v = json_field(j, "settings", where)) {
    if (!v->is_object()) fail(where, "field 'settings' is not an object");
    s.settings = *v;
  }
  const std::string mw = where + ": model";
  s.n_layer = json_int_field(j, "n_layer", where, json_int_field(s.model, "n_layer", mw, 0));
  s.n_head = json_int_field(j, "n_head", where, json_int_field(s.model, "n_head", mw, 0));
  s.n_kv_head = json_int_field(j, "n_kv_head", where, json_int_field(s.model, "n_kv_head", mw, 0));
  s.tests = json_int_field(j, "tests", where, 0);
  s.counted = json_int_field(j, "counted", where, 0);
  s.niah_accuracy = json_number_field(j, "niah_accuracy", where, 0.0);
  s.mean_rouge_recall = json_number_field(j, "mean_rouge_recall", where, 0.0);
  s.count_above_0_1 = json_int_field(j, "count_above_0_1", where, 0);
  s.share_above_0_1 = json_number_field(j, "share_above_0_1", where, 0.0);
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
  std::stable_sort(s.heads.begin(), s.heads.end(), [](const HeadStat& a, const HeadStat& b) { return a.mean > b.mean; });
  s.share_above_0_1 = s.heads.empty() ? 0.0 : static_cast<double>(s.count_above_0_1) / s.heads.size();
  return s;
}

json model_info_json(const Model& m) {
  const ModelConfig& c = m.config;
  return {{"path", m.source},         {"format", m.format},        {"architecture", c.architecture},
          {"n_layer", c.n_layer},     {"n_head", c.n_head},        {"n_kv_head", c.n_kv_head},
          {"head_dim", c.head_dim},   {"n_vocab", c.n_vocab},      {"n_ctx", c.n_ctx_train},
          {"n_params", m.n_params()}};
}

namespace {

std::vector<TestResult> results_of(const RunDir& dir) {
  std::vector<TestResult> out;
  for (const auto& j : dir.lines()) out.push_back(test_result_from_json(j, dir.file("results.jsonl")));
  return out;
}

// The NIAH grid as an Experiment: one key per test, run in the runner's order (prefix reuse).
class DetectExperiment : public Experiment {
 public:
  DetectExperiment(NiahRunner& runner, json record) : runner_(runner), record_(std::move(record)), tasks_(runner.tasks()) {}
  std::string kind() const override { return "detect"; }
  json run_record() const override { return record_; }
  std::vector<std::string> keys() const override {
    std::vector<std::string> out;
    for (const auto& t : tasks_) out.push_back(t.test_id);
    return out;
  }
  void check_lines(const RunDir& dir) const override { dir.read_lines(test_result_from_json); }
  std::vector<size_t> execution_order(std::vector<size_t> pending) const override {
    std::map<std::string, size_t> index_of;
    std::vector<NiahTask> todo;
    for (size_t i : pending) index_of[tasks_[i].test_id] = i, todo.push_back(tasks_[i]);
    std::vector<size_t> out;
    for (const auto& t : runner_.execution_order(std::move(todo))) out.push_back(index_of.at(t.test_id));
    return out;
  }
  json run_key(size_t i) override {
    last_ = runner_.run(tasks_[i]);
    return to_json(last_);
  }
  const TestResult& last() const { return last_; }

 private:
  NiahRunner& runner_;
  json record_;
  std::vector<NiahTask> tasks_;
  TestResult last_;
};

// Extends o.merge_into with the tests it does not hold yet.
void merge_into_reference(const DetectOptions& o, const ModelConfig& c, const std::vector<TestResult>& results) {
  // A rerun of the same command (a requeued batch job, a resumed run) must not extend the
  // file with tests it already holds: OUT/merged_into.json lists the tests each file got.
  // The target and that record change together through a journal (io/atomic_file.h), so a
  // failure between the two writes cannot make the next run merge the same tests again.
  const std::string record_path = o.output_dir + "/merged_into.json";
  const std::string journal = o.output_dir + "/merged_into.journal";
  finish_journal(journal);
  json record = fs::exists(record_path) ? read_json_file(record_path) : json::object();
  const std::string target = fs::weakly_canonical(o.merge_into).string();
  std::set<std::string> already;
  for (const auto& id : record.value(target, json::array())) already.insert(id.get<std::string>());
  std::vector<TestResult> fresh;
  for (const auto& r : results)
    if (!already.count(r.test_id)) fresh.push_back(r);
  sort_results(fresh);
  if (!fresh.empty() || !fs::exists(o.merge_into)) {
    const json merged = head_scores_merged_with(o.merge_into, head_score_json(fresh, c.n_layer, c.n_head));
    for (const auto& r : fresh) record[target].push_back(r.test_id);
    write_files_journaled(journal, {{o.merge_into, merged.dump()}, {record_path, record.dump(1) + "\n"}});
  }
}

}  // namespace

DetectSummary write_detect_outputs(const RunDir& dir) {
  const json& run = dir.record();
  const std::string where = dir.file("run.json");
  const int n_layer = json_int_field(run, "n_layer", where), n_head = json_int_field(run, "n_head", where),
            n_kv_head = json_int_field(run, "n_kv_head", where);
  std::vector<TestResult> results = results_of(dir);
  sort_results(results);
  DetectSummary s = summarize(results, n_layer, n_head, n_kv_head);
  dir.write_file("head_score.json", head_score_json(results, n_layer, n_head).dump() + "\n");
  s.model = run.value("model", json::object());
  s.settings = run.value("settings", json::object());
  dir.write_file("summary.json", s.to_json().dump(2) + "\n");
  return s;
}

DetectSummary run_detect(NiahRunner& runner, const DetectOptions& o) {
  const ModelConfig& c = runner.model().config;
  DetectExperiment e(runner, {{"model", model_info_json(runner.model())}, {"settings", o.settings},
                              {"n_layer", c.n_layer}, {"n_head", c.n_head}, {"n_kv_head", c.n_kv_head}});
  ExperimentRunOptions ro;
  ro.output_dir = o.output_dir;
  ro.shard = {o.shard_index, o.shard_count};
  ro.grow_grid = o.grow_grid;
  if (o.progress)
    ro.progress = [&](int done, int total, const json&, double elapsed) { o.progress(done, total, e.last(), elapsed); };
  const RunDir dir = run_experiment(e, ro);
  DetectSummary s = write_detect_outputs(dir);
  if (!o.merge_into.empty()) merge_into_reference(o, c, results_of(dir));
  return s;
}

DetectSummary merge_runs(const std::vector<std::string>& shard_dirs, const std::string& out_dir) {
  const RunDir merged = merge_run_dirs(shard_dirs, out_dir);
  if (!merged.kind().empty() && merged.kind() != "detect")
    fail(shard_dirs.front(), "holds a " + merged.kind() + " run, not a detect run");
  return write_detect_outputs(merged);
}

std::string format_summary(const DetectSummary& s, int top_n) {
  std::ostringstream out;
  char buf[256];
  std::snprintf(buf, sizeof(buf), "NIAH accuracy: %d of %d tests counted (%.1f%%), mean ROUGE-1 recall %.1f\n",
                s.counted, s.tests, 100.0 * s.niah_accuracy, s.mean_rouge_recall);
  out << buf;
  std::snprintf(buf, sizeof(buf), "retrieval heads (score > %g): %d of %zu (%.2f%%)\n", kRetrievalThreshold, s.count_above_0_1,
                s.heads.size(), 100.0 * s.share_above_0_1);
  out << buf;
  out << "\n rank  head     kv   score   frequency\n";
  const int g_size = s.n_kv_head > 0 ? s.n_head / s.n_kv_head : 1;
  for (int i = 0; i < std::min<int>(top_n, static_cast<int>(s.heads.size())); ++i) {
    const HeadStat& h = s.heads[i];
    std::snprintf(buf, sizeof(buf), " %4d  %-7s  %-3d  %.4f  %.3f\n", i + 1,
                  h.id.key().c_str(), h.id.head / g_size, h.mean, h.frequency);
    out << buf;
  }
  if (g_size > 1) {
    // KV groups holding at least one retrieval head.
    HeadGrid<double> mean_of(s.n_layer, s.n_head);
    for (const auto& h : s.heads) mean_of[h.id] = h.mean;
    std::snprintf(buf, sizeof(buf),
                  "\n KV groups with retrieval heads (layer-kv: heads above %g / group size, best score)\n",
                  kRetrievalThreshold);
    out << buf;
    int shown = 0;
    for (int l = 0; l < s.n_layer; ++l)
      for (int g = 0; g < s.n_kv_head; ++g) {
        int above = 0;
        double best = 0;
        for (int h = g * g_size; h < (g + 1) * g_size; ++h) {
          above += mean_of.at(l, h) > kRetrievalThreshold;
          best = std::max(best, mean_of.at(l, h));
        }
        if (above == 0) continue;
        std::snprintf(buf, sizeof(buf), " %d-%d: %d/%d, %.4f\n", l, g, above, g_size, best);
        out << buf;
        ++shown;
      }
    if (shown == 0) out << " (none)\n";
  }
  return out.str();
}

}  // namespace rhead

// Detection run: resume, shards, aggregate files, summary.
#include "experiments/detect.h"

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

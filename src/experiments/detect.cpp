// Detection run: resume, shards, aggregate files, summary.
#include "experiments/detect.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <tuple>
#include <sstream>

#include "analysis/head_stats.h"
#include "io/checked.h"
#include "io/error.h"
#include "io/json.h"
#include "io/mapped_file.h"
#include "experiments/experiment.h"
#include "experiments/head_methods.h"
#include "io/atomic_file.h"

namespace rhead {

namespace fs = std::filesystem;
using nlohmann::json;

json model_info_json(const Model& m) {
  const ModelConfig& c = m.config;
  return {{"path", m.source},        {"format", m.format},   {"architecture", c.architecture},
          {"n_layer", c.n_layer},    {"n_head", c.n_head},   {"n_kv_head", c.n_kv_head},
          {"head_dim", c.head_dim},  {"n_vocab", c.n_vocab}, {"n_ctx", c.n_ctx_train},
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
  DetectExperiment(NiahRunner& runner, json record, bool stratified)
      : runner_(runner),
        record_(std::move(record)),
        stratified_(stratified),
        tasks_(stratified ? stratified_order(runner.tasks()) : runner.tasks()) {}
  std::string kind() const override { return "detect"; }
  json run_record() const override { return record_; }
  std::vector<std::string> keys() const override {
    std::vector<std::string> out;
    for (const auto& t : tasks_) out.push_back(t.test_id);
    return out;
  }
  void check_lines(const RunDir& dir) const override { dir.read_lines(test_result_from_json); }
  std::vector<size_t> execution_order(std::vector<size_t> pending) const override {
    if (stratified_) return pending;  // the key order is the point: every prefix covers the grid
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
  bool stratified_ = false;
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

namespace {

// The bootstrap statistics (analysis/head_stats.h) of the counted tests of `results` (sorted),
// whose reference head_score map is `head_scores`; errors name `where`.
analysis::HeadStats detect_head_stats(const std::vector<TestResult>& results, const json& head_scores,
                                      const std::string& where) {
  std::vector<analysis::TestCluster> tests;
  for (const auto& r : results)
    if (r.counted) tests.push_back({r.needle_id, static_cast<long long>(r.length)});
  return analysis::head_stats(analysis::score_map_from_reference_json(head_scores, where), tests);
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
  const json scores = head_score_json(results, n_layer, n_head);
  dir.write_file("head_score.json", scores.dump() + "\n");
  for (const char* method : {kQrheadMethod, kLookbackMethod}) {
    const bool present =
        std::any_of(results.begin(), results.end(), [&](const TestResult& r) { return r.method_scores.count(method); });
    if (!present) continue;
    const std::string name = std::string("head_score.") + method + ".json";
    dir.write_file(name, method_score_json(results, method, n_layer, n_head, dir.file("results.jsonl")).dump() + "\n");
  }
  const analysis::HeadStats stats = detect_head_stats(results, scores, dir.file("head_score.json"));
  dir.write_file("head_stats.json", analysis::to_json(stats).dump(1) + "\n");
  s.stability = analysis::stability_json(stats);
  s.model = run.value("model", json::object());
  s.settings = run.value("settings", json::object());
  if (const json* u = json_field(s.settings, "until_stable", where)) {
    s.until_stable = *u;
    const int grid = json_int_field(*u, "grid_tests", where + ": until_stable");
    s.until_stable["tests_run"] = s.tests;
    s.until_stable["tests_skipped"] = std::max(0, grid - s.tests);
    s.until_stable["stable"] =
        stable_rule_holds(results, n_layer, n_head, json_int_field(*u, "k", where + ": until_stable"), where);
  }
  dir.write_file("summary.json", s.to_json().dump(2) + "\n");
  return s;
}

std::vector<NiahTask> stratified_order(const std::vector<NiahTask>& tasks) {
  std::map<int, int> needles;
  std::map<int64_t, int> lengths;
  std::map<int, int> depths;
  std::map<std::tuple<int, int64_t, int>, const NiahTask*> by_cell;
  for (const auto& t : tasks) {
    needles[t.needle_id] = 0, lengths[t.length] = 0, depths[t.depth] = 0;
    by_cell[{t.needle_id, t.length, t.depth}] = &t;
  }
  const int n_depth = static_cast<int>(depths.size());
  std::vector<int> depth_values;
  for (const auto& [d, unused] : depths) depth_values.push_back(d);
  // p: the depth indices in the order of the base-2 radical inverse (0, 1/2, 1/4, 3/4, ...).
  std::vector<int> p;
  std::vector<bool> seen(n_depth, false);
  for (unsigned i = 0; static_cast<int>(p.size()) < n_depth; ++i) {
    double inv = 0, f = 0.5;
    for (unsigned v = i; v; v >>= 1, f /= 2) inv += (v & 1) * f;
    const int d = std::min(n_depth - 1, static_cast<int>(inv * n_depth));
    if (!seen[d]) seen[d] = true, p.push_back(d);
  }
  std::vector<NiahTask> out;
  for (int r = 0; r < n_depth; ++r) {
    int c = 0;
    for (const auto& [len, unused_l] : lengths)
      for (const auto& [needle, unused_n] : needles) {
        const int d = depth_values[(p[r] + c++) % n_depth];
        auto it = by_cell.find({needle, len, d});
        if (it != by_cell.end()) out.push_back(*it->second);
      }
  }
  if (out.size() != tasks.size())
    throw Error("stratified order: the grid's tests are not a full needle x length x depth grid");
  return out;
}

int stratified_cells(const std::vector<NiahTask>& tasks) {
  std::set<std::pair<int, int64_t>> cells;
  for (const auto& t : tasks) cells.insert({t.needle_id, t.length});
  return static_cast<int>(cells.size());
}

bool stable_rule_holds(const std::vector<TestResult>& results, int n_layer, int n_head, int k,
                       const std::string& where) {
  std::vector<TestResult> sorted = results;
  sort_results(sorted);
  std::vector<analysis::TestCluster> tests;
  for (const auto& r : sorted)
    if (r.counted) tests.push_back({r.needle_id, static_cast<long long>(r.length)});
  if (tests.empty()) return false;
  const analysis::ScoreMap map =
      analysis::score_map_from_reference_json(head_score_json(sorted, n_layer, n_head), where);
  std::set<int> needles, grid_needles;
  std::set<long long> lengths, grid_lengths;
  for (const auto& t : tests) needles.insert(t.needle), lengths.insert(t.length);
  for (const auto& r : sorted) grid_needles.insert(r.needle_id), grid_lengths.insert(r.length);
  // The bootstrap sees an axis's variation only through two of its clusters.
  if (needles.size() < std::min<std::size_t>(2, grid_needles.size()) ||
      lengths.size() < std::min<std::size_t>(2, grid_lengths.size()))
    return false;
  const analysis::BootstrapPlan plan =
      analysis::make_bootstrap_plan(static_cast<int>(needles.size()), static_cast<int>(lengths.size()),
                                    analysis::kDefaultReplicates, analysis::kDefaultBootstrapSeed);
  const analysis::HeadStats st = analysis::head_stats(map, tests, plan, {{"K", k}});
  if (st.valid_replicates == 0) return false;
  for (const auto& h : st.heads)
    if (h.p_top[0] > kStableLow && h.p_top[0] < kStableHigh) return false;
  return true;
}

DetectSummary run_detect(NiahRunner& runner, const DetectOptions& o) {
  const ModelConfig& c = runner.model().config;
  json settings = o.settings;
  const std::vector<NiahTask> tasks = runner.tasks();
  const int cells = stratified_cells(tasks);
  int stable_k = 0;
  if (o.until_stable) {
    const int heads = c.n_layer * c.n_head;
    stable_k = o.stable_k > 0 ? std::min(o.stable_k, heads) : analysis::default_top_ks(heads).back().k;
    settings["fingerprint"]["key_order"] = "stratified";
    char rule[320];
    std::snprintf(rule, sizeof(rule),
                  "checked each time the run holds a multiple of %d tests (one per needle set x length cell): stop "
                  "when every head has P(in top-%d) >= %.2f or <= %.2f under the two-way cluster bootstrap "
                  "(%d replicates, seed %llu) of the counted tests",
                  cells, stable_k, kStableHigh, kStableLow, analysis::kDefaultReplicates,
                  static_cast<unsigned long long>(analysis::kDefaultBootstrapSeed));
    settings["until_stable"] = {
        {"k", stable_k}, {"check_every", cells}, {"rule", rule}, {"grid_tests", static_cast<int>(tasks.size())}};
  }
  DetectExperiment e(runner,
                     {{"model", model_info_json(runner.model())},
                      {"settings", settings},
                      {"n_layer", c.n_layer},
                      {"n_head", c.n_head},
                      {"n_kv_head", c.n_kv_head}},
                     o.until_stable);
  ExperimentRunOptions ro;
  if (o.until_stable) {
    std::size_t checked = 0;
    bool stable = false;
    ro.stop = [&, checked, stable](const RunDir& dir) mutable {
      const std::size_t n = dir.lines().size();
      if (n == 0 || n % static_cast<std::size_t>(cells) != 0) return false;
      if (n == checked) return stable;
      checked = n;
      stable = stable_rule_holds(results_of(dir), c.n_layer, c.n_head, stable_k, dir.file("results.jsonl"));
      if (o.stable_check) o.stable_check(static_cast<int>(n), stable);
      return stable;
    };
  }
  static_cast<RunFolderOptions&>(ro) = o;
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
  std::snprintf(
      buf, sizeof(buf),
      "NIAH accuracy: %d of %d tests counted (%.1f%%; counted: answer ROUGE-1 recall > 50), mean ROUGE-1 recall %.1f\n",
      s.counted, s.tests, 100.0 * s.niah_accuracy, s.mean_rouge_recall);
  out << buf;
  if (s.counted == 0) {
    out << "\n" << kNoCountedTestsNote << "\n";
    return out.str();
  }
  std::snprintf(buf, sizeof(buf), "retrieval heads (score > %g): %d of %zu (%.2f%%)\n", kRetrievalThreshold,
                s.count_above_0_1, s.heads.size(), 100.0 * s.share_above_0_1);
  out << buf;
  out << "\n rank  head     kv   score   frequency\n";
  const int g_size = s.n_kv_head > 0 ? s.n_head / s.n_kv_head : 1;
  const int zero =
      static_cast<int>(std::count_if(s.heads.begin(), s.heads.end(), [](const HeadStat& h) { return h.mean <= 0; }));
  for (int i = 0; i < std::min<int>(top_n, static_cast<int>(s.heads.size())); ++i) {
    const HeadStat& h = s.heads[i];
    if (h.mean <= 0) {  // heads that never copied are not ranked
      std::snprintf(buf, sizeof(buf), "  ...   %d heads score 0\n", zero);
      out << buf;
      break;
    }
    std::snprintf(buf, sizeof(buf), " %4d  %-7s  %-3d  %.4f  %.3f\n", i + 1, h.id.key().c_str(), h.id.head / g_size,
                  h.mean, h.frequency);
    out << buf;
  }
  out << " score: mean retrieval score over the counted tests; frequency: share of counted tests in which the head\n"
         " copied at least one needle token\n";
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

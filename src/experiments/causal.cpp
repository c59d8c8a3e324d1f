// Causal experiments: mask settings, calibration, the masked NIAH grid and its outputs.
#include "experiments/causal.h"
#include "report/kv_sweep.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <set>
#include <sstream>

#include "analysis/run_files.h"
#include "analysis/stats.h"
#include "io/error.h"
#include "io/json.h"
#include "io/mapped_file.h"
#include "io/text.h"
#include "model/generate.h"
#include "experiments/detect.h"
#include "experiments/experiment.h"
#include "records/taxonomy.h"
#include "report/figures.h"
#include "report/plots.h"

namespace rhead {

namespace fs = std::filesystem;
using nlohmann::json;

// --- niah ---

NiahLine niah_line(const TestResult& r, const MaskSetting& mask, const std::string& model, const std::string& needle,
                   int head_dim, KvType kv_type) {
  const std::vector<StepCopies> steps = r.steps.value_or(std::vector<StepCopies>{});
  NiahLine l;
  l.test_id = mask.label + "|" + r.test_id;
  l.model = model;
  l.context_length = r.length;
  l.depth_percent = r.depth;
  l.needle = needle;
  l.model_response = r.answer;
  l.score = r.rouge_recall;
  l.grid_test_id = r.test_id;
  l.needle_id = r.needle_id;
  l.condition = line_condition(mask, head_dim, kv_type, r.prompt_tokens);
  l.mask_mode = mask_mode_name(mask.mask.mode);
  l.mask_phase = mask_phase_name(mask.mask.phase);
  l.passed = r.rouge_recall > kPassScore;
  l.error_kind = classify_error(r.rouge_recall, steps);
  l.copy_tally = tally_copies(steps);
  l.span_begin = r.span_begin;
  l.span_end = r.span_end;
  l.prompt_tokens = r.prompt_tokens;
  l.generated_tokens = r.generated_tokens;
  l.seconds = r.seconds;
  l.observed = static_cast<const TestObservations&>(r);
  return l;
}

namespace {

int kind_order(const std::string& kind) {
  if (kind == "none") return 0;
  if (kind == "top") return 1;
  if (kind == "random") return 2;
  return 3;
}

}  // namespace

NiahCausalSummary summarize_niah_lines(const std::vector<NiahLine>& lines, bool sweep) {
  std::map<std::string, std::vector<const NiahLine*>> by_mask;
  for (const auto& l : lines) by_mask[l.condition.mask].push_back(&l);
  NiahCausalSummary s;
  for (const auto& [label, group] : by_mask) {
    MaskOutcome o;
    o.label = label;
    const NiahLine& first = *group.front();
    o.mask = first.condition.summary_mask();
    o.mask["mode"] = first.mask_mode;
    o.mask["phase"] = first.mask_phase;
    double kv_sum = 0, query_sum = 0;
    for (ErrorKind k : failure_kinds()) o.errors[error_kind_name(k)] = 0;
    double score_sum = 0, sink_sum = 0;
    int sink_n = 0;
    std::map<std::string, std::pair<double, int>> sink_by;
    for (const NiahLine* l : group) {
      ++o.tests;
      score_sum += l->score;
      kv_sum += l->condition.kv_kept_fraction();
      query_sum += l->condition.query_kept_fraction();
      o.passed += l->score > kPassScore;
      const std::string outcome = error_kind_name(l->error_kind);
      if (l->error_kind != ErrorKind::none) o.errors[outcome] += 1;
      if (l->observed.support_share >= 0) o.support.add(l->observed.support_share, l->score > kPassScore);
      if (l->observed.sink_mass_top_heads >= 0) {
        const double m = l->observed.sink_mass_top_heads;
        sink_sum += m;
        ++sink_n;
        sink_by[outcome].first += m;
        sink_by[outcome].second += 1;
      }
    }
    o.mean_score = o.tests ? score_sum / o.tests : 0.0;
    if (o.tests) o.kv_kept_fraction = kv_sum / o.tests, o.query_kept_fraction = query_sum / o.tests;
    if (sink_n) o.sink_mass = sink_sum / sink_n;
    for (const auto& [k, v] : sink_by) o.sink_mass_by_outcome[k] = v.first / v.second;
    s.masks.push_back(std::move(o));
  }
  std::stable_sort(s.masks.begin(), s.masks.end(), [](const MaskOutcome& a, const MaskOutcome& b) {
    // The baseline (no mask, full cache) first.
    const bool base_a = a.label == "none", base_b = b.label == "none";
    if (base_a != base_b) return base_a;
    const std::string ka = a.mask.value("kind", ""), kb = b.mask.value("kind", "");
    if (kind_order(ka) != kind_order(kb)) return kind_order(ka) < kind_order(kb);
    if (a.mask.value("k", 0) != b.mask.value("k", 0)) return a.mask.value("k", 0) < b.mask.value("k", 0);
    if (a.mask.value("seed", 0) != b.mask.value("seed", 0)) return a.mask.value("seed", 0) < b.mask.value("seed", 0);
    return a.label < b.label;
  });
  if (sweep) s.sweep = sweep_json(s.masks);
  return s;
}

json sweep_json(const std::vector<MaskOutcome>& outcomes) {
  std::optional<double> none;
  std::map<int, double> top;
  std::map<int, std::pair<double, int>> random;
  for (const auto& o : outcomes) {
    const std::string kind = o.mask.value("kind", "");
    const int k = o.mask.value("k", 0);
    if (kind == "none")
      none = o.mean_score;
    else if (kind == "top")
      top[k] = o.mean_score;
    else if (kind == "random")
      random[k].first += o.mean_score, random[k].second += 1;
  }
  if (top.empty() && random.empty()) return json();
  json j = json::object();
  json t = json::array(), r = json::array();
  if (none) t.push_back({0, *none}), r.push_back({0, *none});
  for (const auto& [k, v] : top) t.push_back({k, v});
  for (const auto& [k, v] : random) r.push_back({k, v.first / v.second});
  if (!top.empty()) j["top"] = t;
  if (!random.empty()) j["random"] = r;
  // Each random draw on its own: the mean hides how far the seeds spread.
  json seeds = json::array();
  for (const auto& o : outcomes)
    if (o.mask.value("kind", "") == "random")
      seeds.push_back({{"k", o.mask.value("k", 0)},
                       {"seed", o.mask.value("seed", uint64_t{0})},
                       {"score", o.mean_score},
                       {"heads", o.mask.value("heads", json::array())}});
  if (!seeds.empty()) j["random_seeds"] = seeds;
  return j;
}

json NiahCausalSummary::to_json() const {
  json j;
  j["model"] = model;
  j["settings"] = settings;
  j["mean_score"] = masks.empty() ? 0.0 : masks.front().mean_score;
  json ms = json::array();
  for (const auto& o : masks) {
    json m = o.mask;
    m["tests"] = o.tests;
    m["passed"] = o.passed;
    m["accuracy"] = o.tests ? static_cast<double>(o.passed) / o.tests : 0.0;
    m["mean_score"] = o.mean_score;
    m["errors"] = o.errors;
    m["sink_mass_top_heads"] = o.sink_mass >= 0 ? json(o.sink_mass) : json();
    m["sink_mass_by_outcome"] = o.sink_mass_by_outcome;
    auto number_or_null = [](double v) { return std::isnan(v) ? json() : json(v); };
    m["support_share_passed"] = number_or_null(o.support.mean_passed());
    m["support_share_failed"] = number_or_null(o.support.mean_failed());
    m["support_auroc"] = number_or_null(o.support.auroc());
    m["kv_kept_fraction"] = o.kv_kept_fraction;
    m["query_kept_fraction"] = o.query_kept_fraction;
    ms.push_back(std::move(m));
  }
  j["masks"] = ms;
  if (!sweep.is_null()) j["sweep"] = sweep;
  return j;
}

std::vector<std::string> write_niah_figures(const std::string& dir, const std::string& title_prefix) {
  std::vector<std::string> written;
  const auto tests = analysis::read_niah_results(dir + "/results.jsonl");
  for (const auto& grid : analysis::niah_grids(tests)) {
    const std::string name = grid.mask.empty() ? "none" : grid.mask;
    const std::string title = title_prefix + ", mask " + name;
    const report::Drawing d = report::niah_heatmap(grid, title);
    for (const char* ext : {".png", ".svg"}) {
      const std::string path = dir + "/heatmap_" + report::file_stem(name) + ext;
      report::save_figure(d, path);
      written.push_back(path);
    }
  }
  for (const auto& split : analysis::support_splits(tests)) {
    const std::string name = split.mask.empty() ? "none" : split.mask;
    const report::Drawing d =
        report::support_share_histogram(split.passed, split.failed, analysis::auroc(split.passed, split.failed),
                                        title_prefix + ", mask " + name + ": support share");
    for (const char* ext : {".png", ".svg"}) {
      const std::string path = dir + "/support_" + report::file_stem(name) + ext;
      report::save_figure(d, path);
      written.push_back(path);
    }
  }
  if (fs::exists(dir + "/sweep.json")) {
    const report::Drawing d = report::sweep_plot(analysis::read_sweep(dir + "/sweep.json"),
                                                 title_prefix + ": masking top-K vs random-K heads");
    for (const char* ext : {".png", ".svg"}) {
      report::save_figure(d, dir + "/sweep" + ext);
      written.push_back(dir + "/sweep" + ext);
    }
  }
  return written;
}

namespace {

std::string model_stem(const json& run) {
  const std::string path = run.value("model", json::object()).value("path", std::string("model"));
  return fs::path(path).filename().string();
}

}  // namespace

NiahCausalSummary write_niah_outputs(const RunDir& run_dir) {
  const std::string& dir = run_dir.path();
  const json& run = run_dir.record();
  const std::vector<NiahLine> lines = run_dir.read_lines(niah_line_from_json);
  NiahCausalSummary s = summarize_niah_lines(lines, run.value("sweep", false));
  s.model = run.value("model", json::object());
  s.settings = run.value("settings", json::object());
  run_dir.write_file("summary.json", s.to_json().dump(2) + "\n");
  if (!s.sweep.is_null()) run_dir.write_file("sweep.json", s.sweep.dump(2) + "\n");
  if (!lines.empty()) write_niah_figures(dir, model_stem(run));
  if (run.value("kv_sweep", false)) {
    std::vector<json> conditions;
    for (const auto& o : s.masks) {
      if (o.mask.value("kind", std::string()) != "none") continue;  // the KV sweep runs unmasked
      conditions.push_back({{"kv_policy", o.mask.value("kv_policy", json::object())},
                            {"kv_kept_fraction", o.kv_kept_fraction},
                            {"query_kept_fraction", o.query_kept_fraction},
                            {"mean_score", o.mean_score}});
    }
    write_kv_sweep(dir, kv_sweep_points(conditions), model_stem(run) + ": NIAH score vs KV cache kept",
                   "mean NIAH score");
  }
  return s;
}

namespace {

// Every mask condition x grid test as an Experiment. One runner per KV policy (the policy is
// a session option); its KV cache is allocated by its first test, so listing tasks allocates
// none.
class NiahExperiment : public Experiment {
 public:
  NiahExperiment(const LoadedModel& model, const SessionOptions& session, NiahRunConfig base,
                 const NiahCausalOptions& o, json record)
      : model_(model), session_(session), base_(std::move(base)), o_(o), record_(std::move(record)) {
    base_.sink_heads = o.sink_heads;
    base_.support_heads = o.support_heads;
    base_.record_steps = true;
    tasks_ = runner_for(o.masks.front()).tasks();
  }
  std::string kind() const override { return "niah"; }
  json run_record() const override { return record_; }
  std::vector<std::string> keys() const override {
    std::vector<std::string> out;
    for (const auto& m : o_.masks)
      for (const auto& t : tasks_) out.push_back(m.label + "|" + t.test_id);
    return out;
  }
  void check_lines(const RunDir& dir) const override {
    std::map<std::string, json> heads_of_label;
    for (const NiahLine& l : dir.read_lines(niah_line_from_json)) {
      // The heads a label stood for: masked heads, and the full heads of its KV policy.
      const LineCondition& c = l.condition;
      const json full = c.kv_policy.is_object() ? c.kv_policy.value("full_heads", json::array()) : json::array();
      heads_of_label.emplace(c.mask, json{c.mask_heads, full});
    }
    for (const auto& m : o_.masks) {
      const json now{head_keys(m.heads),
                     m.kv.policy.active() ? json(head_keys(m.kv.policy.full_heads())) : json::array()};
      auto it = heads_of_label.find(m.label);
      if (it != heads_of_label.end() && it->second != now)
        fail(dir.file("results.jsonl"), "condition '" + m.label + "' had masked / full heads " + it->second.dump() +
                                            " there, now " + now.dump() + " (other head scores?); use another -o");
    }
  }
  // Decode-phase masks (and none) leave the prefill untouched: per KV condition, each prompt
  // is prefilled once and decoded under every such mask in turn. A phase-all mask changes
  // the prefill, so its tests run together, mask by mask.
  std::vector<size_t> execution_order(std::vector<size_t> pending) const override {
    const size_t n_tasks = tasks_.size();
    std::vector<std::vector<size_t>> todo(o_.masks.size());  // per mask: task indices
    for (size_t i : pending) todo[i / n_tasks].push_back(i % n_tasks);
    auto tasks_of = [&](const std::vector<size_t>& idx) {
      std::vector<NiahTask> t;
      for (size_t i : idx) t.push_back(tasks_[i]);
      return t;
    };
    std::map<std::string, size_t> task_index;
    for (size_t i = 0; i < n_tasks; ++i) task_index[tasks_[i].test_id] = i;
    std::vector<size_t> out;
    std::vector<std::string> kv_labels;
    for (const auto& m : o_.masks)
      if (std::find(kv_labels.begin(), kv_labels.end(), m.kv.label) == kv_labels.end()) kv_labels.push_back(m.kv.label);
    for (const std::string& kv : kv_labels) {
      std::map<size_t, std::vector<size_t>> masks_of_task;
      std::vector<size_t> shared;
      for (size_t m = 0; m < o_.masks.size(); ++m) {
        if (o_.masks[m].kv.label != kv || todo[m].empty()) continue;
        NiahRunner& runner = runner_for(o_.masks[m]);
        if (!o_.masks[m].mask.empty() && o_.masks[m].mask.phase == MaskPhase::all) {
          for (const auto& t : runner.execution_order(tasks_of(todo[m])))
            out.push_back(m * n_tasks + task_index.at(t.test_id));
          continue;
        }
        for (size_t t : todo[m]) {
          auto& list = masks_of_task[t];
          if (list.empty()) shared.push_back(t);
          list.push_back(m);
        }
      }
      if (shared.empty()) continue;
      NiahRunner& runner = runner_for(o_.masks[masks_of_task.begin()->second.front()]);
      for (const auto& t : runner.execution_order(tasks_of(shared))) {
        const size_t ti = task_index.at(t.test_id);
        for (size_t m : masks_of_task[ti]) out.push_back(m * n_tasks + ti);
      }
    }
    return out;
  }
  json run_key(size_t i) override {
    const MaskSetting& m = o_.masks[i / tasks_.size()];
    const NiahTask& task = tasks_[i % tasks_.size()];
    NiahRunner& runner = runner_for(m);
    last_ = runner.run(task, &m.mask);
    last_mask_ = m.label;
    json line = to_json(niah_line(last_, m, model_.model->source, base_.needle_sets.at(task.needle_id).needle.needle,
                                  model_.model->config.head_dim, session_.kv_type()));
    // What the session really holds (a compacted cache under a KV policy on the CPU; its
    // allocations grow with the longest prompt so far and are never given back).
    if (line.contains("kv_cache") && line["kv_cache"].is_object())
      line["kv_cache"]["kv_bytes_held"] = runner.kv_bytes_held();
    return line;
  }
  int64_t prefilled_tokens() const {
    int64_t n = 0;
    for (const auto& [label, runner] : runners_) n += runner->prefilled_tokens();
    return n;
  }
  const TestResult& last() const { return last_; }
  const std::string& last_mask() const { return last_mask_; }

 private:
  NiahRunner& runner_for(const MaskSetting& m) const {
    auto& r = runners_[m.kv.label];
    if (!r) {
      SessionOptions so = session_;
      so.kv_policy = m.kv.policy;  // inactive: none
      r = std::make_unique<NiahRunner>(model_, so, base_);
    }
    return *r;
  }

  const LoadedModel& model_;
  SessionOptions session_;
  NiahRunConfig base_;
  const NiahCausalOptions& o_;
  json record_;
  std::vector<NiahTask> tasks_;
  mutable std::map<std::string, std::unique_ptr<NiahRunner>> runners_;  // by KV condition label
  TestResult last_;
  std::string last_mask_;
};

}  // namespace

NiahCausalSummary run_niah_causal(const LoadedModel& model, const SessionOptions& session, NiahRunConfig base,
                                  const NiahCausalOptions& o) {
  if (o.masks.empty()) throw Error("no mask setting to run");
  const ModelConfig& c = model.model->config;
  NiahExperiment e(model, session, std::move(base), o,
                   {{"model", model_info_json(*model.model)},
                    {"settings", o.settings},
                    {"sweep", o.sweep},
                    {"kv_sweep", o.kv_sweep},
                    {"n_layer", c.n_layer},
                    {"n_head", c.n_head},
                    {"n_kv_head", c.n_kv_head}});
  ExperimentRunOptions ro;
  static_cast<RunFolderOptions&>(ro) = o;
  if (o.progress)
    ro.progress = [&](int done, int total, const json&, double elapsed) {
      o.progress(done, total, e.last_mask(), e.last(), elapsed);
    };
  const RunDir dir = run_experiment(e, ro);
  NiahCausalSummary s = write_niah_outputs(dir);
  s.prefilled_tokens = e.prefilled_tokens();
  return s;
}

NiahCausalSummary merge_niah_runs(const std::vector<std::string>& shard_dirs, const std::string& out_dir) {
  const RunDir merged = merge_run_dirs(shard_dirs, out_dir);
  if (merged.kind() != "niah" && !merged.kind().empty())
    fail(shard_dirs.front(), "holds a " + merged.kind() + " run, not a niah run");
  return write_niah_outputs(merged);
}

std::string format_niah_summary(const NiahCausalSummary& s) {
  std::ostringstream out;
  char buf[512];
  bool kv = false;    // any KV policy: add the KV kept columns
  size_t width = 29;  // the mask column fits the longest label
  for (const auto& o : s.masks) kv |= o.mask.contains("kv_policy"), width = std::max(width, o.label.size());
  const int w = static_cast<int>(width);
  // heads: query heads masked, or for a KV condition the query heads that keep the whole cache.
  std::snprintf(buf, sizeof buf,
                " %-*s  heads  tests  mean score  passed  incomplete  hallucination  wrong_extraction  sink mass", w,
                "mask");
  out << buf << (kv ? "  KV kept/q  KV kept/kv" : "") << "\n";
  for (const auto& o : s.masks) {
    const std::string sink = o.sink_mass >= 0 ? std::to_string(o.sink_mass).substr(0, 6) : "-";
    const bool kv_row = o.mask.contains("kv_policy");
    const int heads =
        kv_row ? static_cast<int>(o.mask["kv_policy"].value("full_heads", json::array()).size()) : o.mask.value("k", 0);
    std::snprintf(buf, sizeof buf, " %-*s  %4d%s  %5d  %10.1f  %6d  %10d  %13d  %16d  %s", w, o.label.c_str(), heads,
                  kv_row ? "f" : " ", o.tests, o.mean_score, o.passed, o.errors.at("incomplete"),
                  o.errors.at("hallucination"), o.errors.at("wrong_extraction"), sink.c_str());
    out << buf;
    if (kv) {
      std::snprintf(buf, sizeof buf, "  %8.1f%%  %9.1f%%", 100 * o.query_kept_fraction, 100 * o.kv_kept_fraction);
      out << buf;
    }
    out << "\n";
  }
  if (kv) out << " (heads: for a KV condition, the query heads that keep the whole cache, marked f)\n";
  // Random masks: each seed's heads, so a reader sees what each draw removed.
  bool any_random = false;
  for (const auto& o : s.masks) {
    if (o.mask.value("kind", "") != "random" || o.mask.contains("kv_policy")) continue;
    if (!any_random) out << "\n random masks: heads each seed masked\n";
    any_random = true;
    std::string heads;
    for (const auto& h : o.mask.value("heads", json::array()))
      heads += (heads.empty() ? "" : ",") + h.get<std::string>();
    std::snprintf(buf, sizeof buf, " %-*s  %6.1f  %s\n", w, o.label.c_str(), o.mean_score, heads.c_str());
    out << buf;
  }
  std::vector<std::pair<std::string, SupportSummary>> support_rows;
  for (const auto& o : s.masks) support_rows.push_back({o.label, o.support});
  out << support_table(support_rows);
  if (!s.sweep.is_null()) {
    std::map<int, std::pair<std::string, std::string>> rows;
    for (const char* name : {"top", "random"})
      if (s.sweep.contains(name))
        for (const auto& p : s.sweep[name]) {
          std::snprintf(buf, sizeof buf, "%.1f", p[1].get<double>());
          (std::string(name) == "top" ? rows[p[0].get<int>()].first : rows[p[0].get<int>()].second) = buf;
        }
    std::map<int, std::vector<double>> seeds;  // K -> each seed's score
    for (const auto& e : s.sweep.value("random_seeds", json::array()))
      seeds[e["k"].get<int>()].push_back(e["score"].get<double>());
    out << "\n sweep: mean NIAH score by number of masked heads K (random-K: mean over seeds, then each seed)\n"
           "    K   top-K  random-K  min-max      each seed\n";
    for (const auto& [k, v] : rows) {
      std::string spread = "-", each;
      if (auto it = seeds.find(k); it != seeds.end() && !it->second.empty()) {
        const auto [lo, hi] = std::minmax_element(it->second.begin(), it->second.end());
        std::snprintf(buf, sizeof buf, "%.1f-%.1f", *lo, *hi);
        spread = buf;
        for (double v2 : it->second) {
          std::snprintf(buf, sizeof buf, "%s%.1f", each.empty() ? "" : " ", v2);
          each += buf;
        }
      }
      std::snprintf(buf, sizeof buf, " %4d  %6s  %8s  %-11s  %s\n", k, v.first.empty() ? "-" : v.first.c_str(),
                    v.second.empty() ? "-" : v.second.c_str(), spread.c_str(), each.c_str());
      out << buf;
    }
  }
  return out.str();
}

}  // namespace rhead

// CSV exports of run folders (see flat_export.h).
#include "report/flat_export.h"

#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include "analysis/run_files.h"
#include "io/atomic_file.h"
#include "io/error.h"
#include "records/taxonomy.h"

namespace rhead::report {

namespace fs = std::filesystem;

std::string csv_field(const std::string& value) {
  if (value.find_first_of(",\"\r\n") == std::string::npos) return value;
  std::string out = "\"";
  for (char c : value) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

namespace {

// A number in full precision (shortest text that reads back to the same double).
std::string num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  double back = 0;
  for (int p = 1; p <= 17; ++p) {
    std::snprintf(buf, sizeof buf, "%.*g", p, v);
    if (std::sscanf(buf, "%lf", &back) == 1 && back == v) break;
  }
  return buf;
}
std::string num(long long v) { return std::to_string(v); }
std::string num(int v) { return std::to_string(v); }
std::string boolean(bool v) { return v ? "true" : "false"; }
// -1 marks "not recorded" in the records.
std::string optional_share(double v) { return v < 0 ? "" : num(v); }

class Csv {
 public:
  explicit Csv(const std::vector<std::string>& header) : columns_(header.size()) { row(header); }
  void row(const std::vector<std::string>& fields) {
    if (fields.size() != columns_) throw Error("internal: CSV row has " + std::to_string(fields.size()) + " fields");
    for (size_t i = 0; i < fields.size(); ++i) out_ << (i ? "," : "") << csv_field(fields[i]);
    out_ << "\r\n";
  }
  std::string text() const { return out_.str(); }

 private:
  size_t columns_;
  std::ostringstream out_;
};

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ";") + s;
  return out;
}

std::vector<FlatFile> detect_exports(const analysis::DetectRun& run) {
  std::vector<FlatFile> files;
  const int counted = run.summary ? run.summary->counted
                                  : static_cast<int>(std::count_if(run.tests.begin(), run.tests.end(),
                                                                   [](const TestResult& t) { return t.counted; }));
  if (run.scores) {
    const analysis::ScoreMap& m = *run.scores;
    const int n_kv = run.summary && run.summary->n_kv_head > 0 ? run.summary->n_kv_head : m.n_head;
    const int group = m.n_head % n_kv == 0 ? m.n_head / n_kv : 1;
    std::vector<int> rank(m.head_count(), 0);
    const auto order = heads_by_score(m.mean);
    for (size_t r = 0; r < order.size(); ++r) rank[order[r]] = static_cast<int>(r) + 1;
    Csv heads({"head", "layer", "head_index", "kv_head", "mean", "frequency", "counted_tests", "rank"});
    for (size_t i = 0; i < m.head_count(); ++i) {
      const HeadId id = m.head_at(i);
      const bool scored = counted > 0;  // no counted test: no score, no rank
      // A head that never copied (score 0) is not ranked.
      heads.row({id.key(), num(id.layer), num(id.head), num(id.head / group), scored ? num(m.mean[i]) : "",
                 scored ? num(m.frequency[i]) : "", num(counted), scored && m.mean[i] > 0 ? num(rank[i]) : ""});
    }
    files.push_back({"heads.csv", heads.text()});
  }
  Csv tests({"test_id", "needle_id", "length", "depth", "prompt_tokens", "generated_tokens", "rouge_recall", "counted",
             "support_share", "error", "seconds", "copying_heads", "answer"});
  for (const TestResult& t : run.tests) {
    std::vector<std::string> copying;
    for (const auto& [key, v] : t.head_scores) copying.push_back(key + ":" + num(v));
    tests.row({t.test_id, num(t.needle_id), num(static_cast<long long>(t.length)), num(t.depth),
               num(static_cast<long long>(t.prompt_tokens)), num(static_cast<long long>(t.generated_tokens)),
               num(t.rouge_recall), boolean(t.counted), optional_share(t.support_share), t.error, num(t.seconds),
               joined(copying), t.answer});
  }
  files.push_back({"tests.csv", tests.text()});
  Csv summary({"tests", "counted", "niah_accuracy", "mean_rouge_recall", "retrieval_heads", "retrieval_share"});
  if (run.summary) {
    const DetectSummary& s = *run.summary;
    summary.row({num(s.tests), num(s.counted), num(s.niah_accuracy), num(s.mean_rouge_recall),
                 s.counted ? num(s.count_above_0_1) : "", s.counted ? num(s.share_above_0_1) : ""});
  }
  files.push_back({"summary.csv", summary.text()});
  return files;
}

std::string kv_number(const nlohmann::json& policy, const char* key) {
  if (!policy.is_object() || !policy.contains(key) || !policy[key].is_number()) return "";
  return policy[key].is_number_integer() ? num(policy[key].get<long long>()) : num(policy[key].get<double>());
}

std::vector<FlatFile> niah_exports(const analysis::NiahRun& run) {
  Csv tests({"test_id",
             "grid_test_id",
             "mask",
             "mask_kind",
             "mask_k",
             "mask_seed",
             "mask_heads",
             "mask_mode",
             "mask_phase",
             "kv_window",
             "kv_sink",
             "kv_kept_fraction",
             "query_kept_fraction",
             "needle_id",
             "context_length",
             "depth_percent",
             "prompt_tokens",
             "generated_tokens",
             "score",
             "passed",
             "error_kind",
             "support_share",
             "seconds",
             "model_response"});
  struct Condition {
    const LineCondition* c = nullptr;
    int tests = 0, passed = 0;
    double score = 0, kept = 0;
  };
  std::vector<std::string> order;  // condition labels, unmasked first, then as they appear
  std::map<std::string, Condition> conditions;
  for (const NiahLine& t : run.tests) {
    const LineCondition& c = t.condition;
    const bool kv = c.kv_policy.is_object();
    tests.row({t.test_id,
               t.grid_test_id,
               c.mask,
               c.mask_kind,
               num(c.mask_k),
               c.mask_kind == "random" ? num(static_cast<long long>(c.mask_seed)) : "",
               joined(c.mask_heads),
               t.mask_mode,
               t.mask_phase,
               kv ? kv_number(c.kv_policy, "window") : "",
               kv ? kv_number(c.kv_policy, "sink") : "",
               num(c.kv_kept_fraction()),
               num(c.query_kept_fraction()),
               num(t.needle_id),
               num(static_cast<long long>(t.context_length)),
               num(t.depth_percent),
               num(static_cast<long long>(t.prompt_tokens)),
               num(static_cast<long long>(t.generated_tokens)),
               num(t.score),
               boolean(t.passed),
               error_kind_name(t.error_kind),
               optional_share(t.observed.support_share),
               num(t.seconds),
               t.model_response});
    auto [it, fresh] = conditions.try_emplace(c.mask);
    if (fresh) {
      it->second.c = &c;
      if (c.mask == "none")
        order.insert(order.begin(), c.mask);
      else
        order.push_back(c.mask);
    }
    it->second.tests += 1;
    it->second.passed += t.passed;
    it->second.score += t.score;
    it->second.kept += c.kv_kept_fraction();
  }
  Csv summary(
      {"mask", "mask_kind", "mask_k", "mask_seed", "mask_heads", "tests", "passed", "mean_score", "kv_kept_fraction"});
  for (const std::string& label : order) {
    const Condition& g = conditions.at(label);
    summary.row({label, g.c->mask_kind, num(g.c->mask_k),
                 g.c->mask_kind == "random" ? num(static_cast<long long>(g.c->mask_seed)) : "", joined(g.c->mask_heads),
                 num(g.tests), num(g.passed), num(g.score / g.tests), num(g.kept / g.tests)});
  }
  return {{"tests.csv", tests.text()}, {"summary.csv", summary.text()}};
}

}  // namespace

std::vector<FlatFile> flat_exports(const std::string& dir) {
  switch (analysis::detect_run_kind(dir)) {
    case analysis::RunKind::detect: return detect_exports(analysis::read_detect_run(dir));
    case analysis::RunKind::niah: return niah_exports(analysis::read_niah_run(dir));
    default: fail(dir, "not a detect or niah run folder (no summary.json, results.jsonl or head_score.json)");
  }
}

std::vector<std::string> write_flat_exports(const std::string& dir, const std::string& out_dir) {
  std::vector<FlatFile> files = flat_exports(dir);
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) fail(out_dir, "cannot create the folder: " + ec.message());
  std::vector<std::string> paths;
  for (const FlatFile& f : files) {
    const std::string path = (fs::path(out_dir) / f.name).string();
    write_file_atomic(path, f.text);
    paths.push_back(path);
  }
  return paths;
}

}  // namespace rhead::report

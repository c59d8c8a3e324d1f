// A run directory: the one home of every experiment's output files and of their guarantees.
//
//   DIR/run.json       {"kind": "detect"|"niah"|"qa"|"cot"|..., "settings": {"fingerprint": ...,
//                      "shard": "I/N", ...}, "model": {...}, "n_layer", "n_head", ...}
//   DIR/results.jsonl  one JSON object a line, one line per finished key ("test_id"), each
//                      written with a single write() and fdatasync'ed before the next key
//                      starts, so a killed run loses at most the key in flight
//   DIR/*              aggregate files (summaries, head_score.json, figures), rebuilt from the
//                      lines and replaced atomically (io/atomic_file.h)
//
// A directory holds one kind of run with one fingerprint (the run's settings.fingerprint and
// its head grid n_layer x n_head): opening it for another is refused with a one-line error
// naming run.json. Reopening it resumes: the torn last line of a killed write is cut off, and
// pending() lists the keys of a shard (I/N: key i belongs to shard i mod N) not yet written.
// Shard directories of one run merge into one (merge_run_dirs).
#pragma once
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rhead {

// Appends lines to a JSONL file: each line is one write(), then fdatasync.
class ResultsWriter {
 public:
  explicit ResultsWriter(const std::string& path);
  ~ResultsWriter();
  ResultsWriter(const ResultsWriter&) = delete;
  ResultsWriter& operator=(const ResultsWriter&) = delete;
  void append(const nlohmann::json& line);

 private:
  std::string path_;
  int fd_ = -1;
};

// Reads every complete JSON line of a results file (a missing file reads as empty), strictly:
// each line is one JSON object with a non-empty string "test_id", no key twice in an object,
// no test_id on two lines (Error "path:N: ..." naming the line). A torn last line — a write
// interrupted by a kill — is cut off the file when `repair_tail`, so appends stay clean.
std::vector<nlohmann::json> read_results_lines(const std::string& path, bool repair_tail);

// Shard I of N (I in [0, N)).
struct Shard {
  int index = 0, count = 1;
};
// Error unless 0 <= index < count.
void check_shard(const Shard& shard);

// What must agree for two directories to hold the same run: settings.fingerprint, n_layer,
// n_head and the grid of keys ("grid": count and digest) of a run.json record (null where
// missing).
nlohmann::json run_fingerprint(const nlohmann::json& record);
// "" when two run.json records hold the same run, else what differs in words ("other
// settings 'model_file', 'kv_type'", "another grid of keys (40 keys, now 60 keys: ...)").
std::string run_difference(const nlohmann::json& old_record, const nlohmann::json& new_record,
                           bool ignore_grid = false);

class RunDir;
// What RunDir::open checks before it writes anything.
struct RunChecks {
  // Every key of the whole run: recorded in run.json ("grid"), and every line read must hold
  // one of them. Empty: no grid is recorded and any key is accepted.
  std::vector<std::string> keys;
  // A further check of the directory's lines (the kind's strict line reader), run before any
  // file is written.
  std::function<void(const RunDir&)> check_lines;
  // Accept a folder whose run had another grid of keys (`--grow`): every line must still hold
  // a key of `keys`, so the grid can only grow, and run.json records the new grid.
  bool grow_grid = false;
};

class RunDir {
 public:
  // Opens `dir` (created when missing) for a run of `kind` described by `record` (run.json;
  // "kind" and, with checks.keys, "grid" are added). Error, with no file written, when
  // DIR/run.json names another kind (none: an older detect run) or another fingerprint or
  // grid, when DIR holds a results.jsonl but no run.json, or when a line fails the checks.
  // Then repairs a torn tail of results.jsonl and writes run.json.
  static RunDir open(const std::string& dir, const std::string& kind, nlohmann::json record,
                     const RunChecks& checks = {});
  // Reads an existing run directory without writing to it (Error when it has no run.json).
  static RunDir read(const std::string& dir);

  const std::string& path() const { return dir_; }
  const std::string& kind() const { return kind_; }
  const nlohmann::json& record() const { return record_; }  // run.json
  std::string file(const std::string& name) const { return dir_ + "/" + name; }

  // Every line of results.jsonl, in file order (appended lines included).
  const std::vector<nlohmann::json>& lines() const { return lines_; }
  // Every line read into its record by `read(line, where)`; `where` is "DIR/results.jsonl:N",
  // N counting from 1 over lines().
  template <typename Read>
  auto read_lines(Read read) const {
    std::vector<decltype(read(nlohmann::json(), std::string()))> out;
    const std::string results = file("results.jsonl");
    for (size_t i = 0; i < lines_.size(); ++i) out.push_back(read(lines_[i], results + ":" + std::to_string(i + 1)));
    return out;
  }
  bool has(const std::string& key) const { return keys_.count(key) > 0; }
  // Indices of `keys` that belong to `shard` and have no line yet, ascending.
  std::vector<size_t> pending(const std::vector<std::string>& keys, const Shard& shard) const;
  // Appends one line (its "test_id" is the key; Error when missing or already written).
  void append(nlohmann::json line);
  // Replaces DIR/name atomically.
  void write_file(const std::string& name, const std::string& text) const;

 private:
  std::string dir_, kind_;
  nlohmann::json record_;
  std::vector<nlohmann::json> lines_;
  std::set<std::string> keys_;
  std::shared_ptr<ResultsWriter> writer_;  // opened by the first append
};

// Joins shard directories of one run into `out_dir`: every directory must hold the same kind
// and fingerprint; lines are united by key in the order met, and a key whose lines differ in
// more than their timing ("seconds", "timing", "reused_tokens") is an error. `out_dir` must be new, empty or
// hold the same run (its lines then join the merge); any other is refused untouched. run.json
// is the first shard's, without settings.shard; when the run recorded its grid and keys are
// missing, run.json gets "partial": {"missing_keys": M, "keys": N}. Returns the merged
// directory (aggregate files not yet written).
RunDir merge_run_dirs(const std::vector<std::string>& dirs, const std::string& out_dir);

}  // namespace rhead

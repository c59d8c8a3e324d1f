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

// Reads every complete JSON line of a results file (a missing file reads as empty). A torn
// last line — a write interrupted by a kill — is cut off the file when `repair_tail`, so
// appends stay clean. Later duplicates of a test_id are dropped.
std::vector<nlohmann::json> read_results_lines(const std::string& path, bool repair_tail);

// Shard I of N (I in [0, N)).
struct Shard {
  int index = 0, count = 1;
};
// Error unless 0 <= index < count.
void check_shard(const Shard& shard);

// What must agree for two directories to hold the same run: settings.fingerprint, n_layer
// and n_head of a run.json record (null where missing).
nlohmann::json run_fingerprint(const nlohmann::json& record);

class RunDir {
 public:
  // Opens `dir` (created when missing) for a run of `kind` described by `record` (run.json;
  // "kind" is added). Error when DIR/run.json names another kind or another fingerprint.
  // Reads results.jsonl, repairing a torn tail, and writes run.json.
  static RunDir open(const std::string& dir, const std::string& kind, nlohmann::json record);
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
// more than their timing ("seconds", "timing") is an error. run.json is the first shard's,
// without settings.shard. Returns the merged directory (aggregate files not yet written).
RunDir merge_run_dirs(const std::vector<std::string>& dirs, const std::string& out_dir);

}  // namespace rhead

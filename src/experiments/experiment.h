// The experiment seam: every kind of run (detect, niah with its mask and KV sweeps, qa, cot)
// is an Experiment over one run directory (io/run_dir.h). An experiment lists its keys, runs
// one key into one result line, and turns the lines into its summary files and figures; one
// driver, run_experiment(), does resume, shards and progress for all of them, and
// write_run_outputs() rebuilds any kind's outputs from its lines alone (after `rhead merge`).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/run_dir.h"

namespace rhead {

class Experiment {
 public:
  virtual ~Experiment() = default;
  // The kind recorded in run.json ("detect", "niah", "qa", "cot").
  virtual std::string kind() const = 0;
  // run.json: {"settings": {"fingerprint": ..., ...}, "model": ..., ...}.
  virtual nlohmann::json run_record() const = 0;
  // Every key of the whole run; key i belongs to shard i mod N.
  virtual std::vector<std::string> keys() const = 0;
  // Refuses to resume a directory whose lines do not fit this run (default: any fits); runs
  // before any file of the directory is written.
  virtual void check_lines(const RunDir& /*dir*/) const {}
  // The order to run the pending key indices in (e.g. to reuse a prefilled prompt).
  virtual std::vector<size_t> execution_order(std::vector<size_t> pending) const { return pending; }
  // Runs key `index`: its result line (the driver sets "test_id" to the key).
  virtual nlohmann::json run_key(size_t index) = 0;
};

// Where a run writes and which part of its grid runs: the run-folder options of every
// experiment (the commands' -o, --shard and --grow).
struct RunFolderOptions {
  std::string output_dir;
  Shard shard;
  bool grow_grid = false;  // --grow: resume a folder whose run had a smaller grid (RunChecks)
};

struct ExperimentRunOptions : RunFolderOptions {
  // After each key: keys done and pending in this process, the key's line, seconds since start.
  // The line is on disk by then, so the callback may throw to stop the run between keys (the
  // Python module does on Ctrl-C): the exception leaves run_experiment, and a rerun resumes.
  std::function<void(int done, int total, const nlohmann::json& line, double elapsed_s)> progress;
  // Asked before each key (and once after the last): true stops the run there, leaving the
  // remaining keys pending (e.g. detect --until-stable once the answer no longer changes).
  std::function<bool(const RunDir& dir)> stop;
};

// Opens the run directory for `experiment` (refusing another kind, fingerprint or grid of
// keys, a line whose key is not one of keys(), and lines check_lines refuses), runs every
// pending key of the shard, appending each line as it finishes. Returns the directory with
// all its lines; the caller writes the outputs (write_run_outputs or the kind's own writer).
RunDir run_experiment(Experiment& experiment, const ExperimentRunOptions& options);

// The summary and figures of one kind, rebuilt from a run directory's lines; returns the
// printed summary table.
struct RunKindOutputs {
  std::string kind;
  std::function<std::string(const RunDir&)> write_outputs;
};
// Every kind, for `rhead merge`.
const std::vector<RunKindOutputs>& run_kinds();

// Rebuilds the aggregate files of `dir` with its kind's writer (a directory without a kind
// is an older detect run). Error for an unknown kind.
std::string write_run_outputs(const RunDir& dir);

}  // namespace rhead

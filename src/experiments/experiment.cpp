// The experiment driver (resume, shard, progress) and the table of run kinds.
#include "experiments/experiment.h"

#include <chrono>

#include "io/error.h"

namespace rhead {

RunDir run_experiment(Experiment& e, const ExperimentRunOptions& o) {
  check_shard(o.shard);
  RunDir dir = RunDir::open(o.output_dir, e.kind(), e.run_record());
  e.check_lines(dir);
  const std::vector<std::string> keys = e.keys();
  const std::vector<size_t> todo = e.execution_order(dir.pending(keys, o.shard));
  const auto t0 = std::chrono::steady_clock::now();
  int done = 0;
  for (size_t i : todo) {
    if (o.stop && o.stop(dir)) return dir;
    nlohmann::json line = e.run_key(i);
    line["test_id"] = keys[i];
    dir.append(line);
    ++done;
    if (o.progress)
      o.progress(done, static_cast<int>(todo.size()), dir.lines().back(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  if (o.stop) o.stop(dir);
  return dir;
}

std::string write_run_outputs(const RunDir& dir) {
  const std::string kind = dir.kind().empty() ? "detect" : dir.kind();
  for (const auto& k : run_kinds())
    if (k.kind == kind) return k.write_outputs(dir);
  fail(dir.file("run.json"), "unknown run kind '" + kind + "'");
}

}  // namespace rhead

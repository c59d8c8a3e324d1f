// The experiment driver (resume, shard, progress) and the table of run kinds.
#include "experiments/experiment.h"

#include <chrono>
#include <filesystem>
#include <set>

#include "io/error.h"
#include "io/json.h"

namespace rhead {

RunDir run_experiment(Experiment& e, const ExperimentRunOptions& o) {
  check_shard(o.shard);
  const std::vector<std::string> keys = e.keys();
  std::set<std::string> distinct;
  for (const auto& k : keys)
    if (!distinct.insert(k).second)
      throw Error("the run would test key '" + k +
                  "' twice (a value repeated in a list option or in the data); nothing was run");
  RunChecks checks;
  checks.keys = keys;
  checks.grow_grid = o.grow_grid;
  checks.check_lines = [&](const RunDir& d) { e.check_lines(d); };
  RunDir dir = RunDir::open(o.output_dir, e.kind(), e.run_record(), checks);
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
  for (const auto& k : run_kinds()) {
    if (k.kind != kind) continue;
    std::string table = k.write_outputs(dir);
    // A merge of an incomplete set of shards: the summary says so, and so does the table.
    const nlohmann::json* partial = dir.record().is_object() ? &dir.record() : nullptr;
    if (partial && partial->contains("partial") && (*partial)["partial"].is_object()) {
      const nlohmann::json& p = (*partial)["partial"];
      const std::string summary = dir.file("summary.json");
      if (std::filesystem::exists(summary)) {
        nlohmann::json doc = read_json_file(summary);
        if (doc.is_object()) {
          doc["partial"] = p;
          dir.write_file("summary.json", doc.dump(2) + "\n");
        }
      }
      table = "PARTIAL: " + p.value("missing_keys", nlohmann::json(0)).dump() + " of " +
              p.value("keys", nlohmann::json(0)).dump() + " keys are missing (a shard not merged or not finished)\n" +
              table;
    }
    return table;
  }
  fail(dir.file("run.json"), "unknown run kind '" + kind + "'");
}

}  // namespace rhead

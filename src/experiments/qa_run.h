// The outputs of a `rhead qa` run directory, rebuilt from its lines: exact match and F1 per
// mask condition (summary.json), the masking sweep (sweep.json, sweep.{png,svg}) and the KV
// sweep (kv_sweep.*), as run.json's "sweep" and "kv_sweep" ask.
#pragma once
#include <string>

#include "io/run_dir.h"

namespace rhead {

// Writes the files and returns the printed table.
std::string write_qa_outputs(const RunDir& dir);

}  // namespace rhead

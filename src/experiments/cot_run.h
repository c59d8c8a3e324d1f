// The outputs of a `rhead cot` run directory, rebuilt from its lines: accuracy per mask
// condition and prompting style (summary.json).
#pragma once
#include <string>

#include "io/run_dir.h"

namespace rhead {

// Writes summary.json and returns the printed table.
std::string write_cot_outputs(const RunDir& dir);

}  // namespace rhead

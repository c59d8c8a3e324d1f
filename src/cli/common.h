// Options and helpers shared by commands that load a model.
#pragma once
#include "io/text.h"
#include <CLI/CLI.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "experiments/run_setup.h"
#include <nlohmann/json.hpp>

#include "io/checked.h"
#include "io/error.h"
#include "model/loader.h"
#include "model/session.h"

namespace rhead::cli {

// ModelOptions, load_model_from_options and session_options live in experiments/run_setup.h
// (shared with the Python module).
void add_model_options(CLI::App* cmd, ModelOptions& o);

// Range checks of numeric options with plain messages ("--depths: must be at least 1, got 0"
// rather than a range to the largest double); NaN and infinities are refused too.
CLI::Validator at_least(double lo);
CLI::Validator in_range(double lo, double hi);

}  // namespace rhead::cli

// Options and helpers shared by commands that load a model.
#pragma once
#include "io/text.h"
#include <CLI/CLI.hpp>
#include <string>

#include "experiments/run_setup.h"

namespace rhead::cli {

// ModelOptions, load_model_from_options and session_options live in experiments/run_setup.h
// (shared with the Python module).
void add_model_options(CLI::App* cmd, ModelOptions& o);


}  // namespace rhead::cli

// Built-in models whose weights rhead computes rather than loads (no file needed).
#pragma once
#include <string>

#include "model/loader.h"

namespace rhead {

// name: "induction" — see builtin.cpp. Error for an unknown name.
LoadedModel load_builtin_model(const std::string& name);

}  // namespace rhead

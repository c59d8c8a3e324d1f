// Command registry: each cli/cmd_*.cpp registers its subcommand with a static
// CommandRegistrar, so adding a command never touches main.cpp.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace rhead::cli {

using CommandSetup = std::function<void(CLI::App& app)>;

struct RegisteredCommand {
  std::string name;
  CommandSetup setup;  // adds the subcommand, its options and its callback to `app`
};

std::vector<RegisteredCommand>& command_registry();

struct CommandRegistrar {
  CommandRegistrar(std::string name, CommandSetup setup) {
    command_registry().push_back({std::move(name), std::move(setup)});
  }
};

// Thrown by a command callback to end with a given exit status after printing its output.
struct CommandExit {
  int code;
};

}  // namespace rhead::cli

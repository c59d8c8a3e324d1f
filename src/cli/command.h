// Command registry: each cli/cmd_*.cpp registers its subcommand with a static
// CommandRegistrar, so adding a command never touches main.cpp.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace rhead::cli {

using CommandSetup = std::function<void(CLI::App& app)>;

// Whether a command runs a model's forward pass (OpenMP work). main() chooses the threads'
// wait policy, which costs a 250 ms sample of the machine, only for those that do.
enum class Compute { model, files_only };

struct RegisteredCommand {
  std::string name;
  CommandSetup setup;  // adds the subcommand, its options and its callback to `app`
  Compute compute = Compute::model;
};

std::vector<RegisteredCommand>& command_registry();

struct CommandRegistrar {
  CommandRegistrar(std::string name, CommandSetup setup, Compute compute = Compute::model) {
    command_registry().push_back({std::move(name), std::move(setup), compute});
  }
};

// Thrown by a command callback to end with a given exit status after printing its output.
struct CommandExit {
  int code;
};

}  // namespace rhead::cli

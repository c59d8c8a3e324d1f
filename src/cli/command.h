// Command registry: each cli/cmd_*.cpp registers its subcommand with a static
// CommandRegistrar, so adding a command never touches main.cpp.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
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

// A subcommand over an options struct O, for the usual shape: `add` adds the subcommand with
// its options bound to a fresh O (kept alive by the callback) and returns it; `run` is the
// callback.
template <typename O>
struct Command : CommandRegistrar {
  Command(std::string name, CLI::App* (*add)(CLI::App& app, O& o), void (*run)(const O& o),
          Compute compute = Compute::model)
      : CommandRegistrar(
            std::move(name),
            [add, run](CLI::App& app) {
              auto o = std::make_shared<O>();
              add(app, *o)->callback([o, run] { run(*o); });
            },
            compute) {}
};

// Thrown by a command callback to end with a given exit status after printing its output.
struct CommandExit {
  int code;
};

}  // namespace rhead::cli

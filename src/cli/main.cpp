// rhead entry point: builds the command tree from the registry, runs one command,
// and turns any error into one line on stderr and a non-zero exit.

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cli/command.h"
#include "io/error.h"
#include "ops/threads.h"

namespace rhead::cli {
std::vector<RegisteredCommand>& command_registry() {
  static std::vector<RegisteredCommand> registry;
  return registry;
}
}  // namespace rhead::cli

int main(int argc, char** argv) {
  using namespace rhead::cli;
  // A closed pipe (`rhead explain ... --html F | head`) must not kill the process before the
  // files it writes are complete: writes to the pipe fail (EPIPE) and the command goes on.
  signal(SIGPIPE, SIG_IGN);
  // The wait policy matters to commands that run a model; it may restart the program once.
  const auto& commands = command_registry();
  const bool files_only = argc > 1 && std::any_of(commands.begin(), commands.end(), [&](const auto& c) {
                            return c.name == argv[1] && c.compute == Compute::files_only;
                          });
  if (!files_only) rhead::apply_wait_policy(argv);  // ops/threads.h
  CLI::App app{"rhead: find, inspect and ablate the retrieval heads of language models"};
  app.require_subcommand(1);
  // Bad option values end like every other error: one line on stderr.
  app.failure_message([](const CLI::App*, const CLI::Error& e) { return "error: " + std::string(e.what()) + "\n"; });
  auto& registry = command_registry();
  std::sort(registry.begin(), registry.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  for (auto& cmd : registry) cmd.setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const CommandExit& e) {
    std::cout.flush();
    return e.code;
  } catch (const rhead::Error& e) {
    std::cout.flush();
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

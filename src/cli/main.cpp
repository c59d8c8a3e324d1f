// rhead entry point: builds the command tree from the registry, runs one command,
// and turns any error into one line on stderr and a non-zero exit.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cli/command.h"
#include "io/error.h"

namespace rhead::cli {
std::vector<RegisteredCommand>& command_registry() {
  static std::vector<RegisteredCommand> registry;
  return registry;
}
}  // namespace rhead::cli

int main(int argc, char** argv) {
  // OpenMP reads its wait policy once, when the program loads. Spinning waits win on an
  // idle machine but collapse when another process holds a core: every barrier then waits
  // for a time slice (1B q8_0 decode on 2 threads with one core busy: 0.7 tokens/s spinning,
  // 7.2 passive). Unless the user chose a policy, restart once with passive waits.
  if (!std::getenv("OMP_WAIT_POLICY")) {
    setenv("OMP_WAIT_POLICY", "passive", 1);
    execv("/proc/self/exe", argv);  // returns only on failure: then carry on as we are
  }
  using namespace rhead::cli;
  CLI::App app{"rhead: find, inspect and ablate the retrieval heads of language models"};
  app.require_subcommand(1);
  auto& registry = command_registry();
  std::sort(registry.begin(), registry.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
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

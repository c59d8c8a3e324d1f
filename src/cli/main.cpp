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
  // OpenMP reads its wait policy once, when the program loads, so it is chosen here and the
  // program restarts once with it. A decode token runs ~180 parallel regions with short serial
  // gaps between them. Passive waits (sleep at once) pay a thread wake-up per region: on a
  // quiet machine that made decode ~35% slower than spinning. Long spins collapse when the
  // cores are shared: a spinning thread burns the slice its partner needs (1B q8_0 decode, 2
  // threads, one core busy: 0.7 tokens/s spinning, 7.2 passive). So: when the machine has a
  // free core for every other runnable task, spin briefly (GOMP_SPINCOUNT 20000, about 0.2 ms,
  // enough to bridge the gaps between regions) and then sleep; when it is oversubscribed, sleep
  // at once. A policy the user set (OMP_WAIT_POLICY or GOMP_SPINCOUNT) is kept.
  if (!std::getenv("OMP_WAIT_POLICY") && !std::getenv("GOMP_SPINCOUNT")) {
    double load = 0.0;
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    const bool quiet = getloadavg(&load, 1) == 1 && load + 0.5 < static_cast<double>(cpus);
    setenv("GOMP_SPINCOUNT", quiet ? "20000" : "0", 1);
    execv("/proc/self/exe", argv);  // returns only on failure: then carry on as we are
  }
  using namespace rhead::cli;
  CLI::App app{"rhead: find, inspect and ablate the retrieval heads of language models"};
  app.require_subcommand(1);
  // Bad option values end like every other error: one line on stderr.
  app.failure_message([](const CLI::App*, const CLI::Error& e) { return "error: " + std::string(e.what()) + "\n"; });
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

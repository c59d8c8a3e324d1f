// OpenMP wait policy (see threads.h).
#include "ops/threads.h"

#include <unistd.h>

#include <cstdlib>

namespace rhead {

void apply_wait_policy(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  double load = 0.0;
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  const bool quiet = getloadavg(&load, 1) == 1 && load + 0.5 < static_cast<double>(cpus);
  setenv("GOMP_SPINCOUNT", quiet ? "20000" : "0", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: then carry on as we are
}

std::string wait_policy_description() {
  std::string out;
  for (const char* name : {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"})
    if (const char* v = std::getenv(name)) out += (out.empty() ? "" : " ") + std::string(name) + "=" + v;
  return out.empty() ? "OpenMP default" : out;
}

}  // namespace rhead

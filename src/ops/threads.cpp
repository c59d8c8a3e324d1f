// OpenMP wait policy (see threads.h).
#include "ops/threads.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

namespace rhead {
namespace {

// Busy and total jiffies of all CPUs from /proc/stat's first line; false when unreadable.
bool cpu_jiffies(double& busy, double& total) {
  FILE* f = std::fopen("/proc/stat", "r");
  if (!f) return false;
  unsigned long long v[8] = {0};
  const int n = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                            &v[6], &v[7]);
  std::fclose(f);
  if (n < 5) return false;
  total = 0;
  for (unsigned long long x : v) total += static_cast<double>(x);
  busy = total - static_cast<double>(v[3]) - static_cast<double>(v[4]);  // minus idle and iowait
  return true;
}

// Cores other processes keep busy right now: sampled over 250 ms while this process sleeps
// (long enough that the start of the processes beside it in a shell pipeline does not count).
// The load average would also do, but it trails by a minute: right after a build ends it
// still reports a busy machine. Falls back to the load average without /proc/stat.
double cores_in_use_by_others(long cpus) {
  double b0, t0, b1, t1;
  if (cpu_jiffies(b0, t0)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    if (cpu_jiffies(b1, t1) && t1 > t0) return (b1 - b0) / (t1 - t0) * static_cast<double>(cpus);
  }
  double load = 0.0;
  return getloadavg(&load, 1) == 1 ? load : 0.0;
}

}  // namespace

void apply_wait_policy(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  long threads = cpus;
  if (const char* n = std::getenv("OMP_NUM_THREADS")) threads = std::max(1L, std::atol(n));
  // Spin only when every thread of ours can have a core of its own.
  const bool quiet = cores_in_use_by_others(cpus) + static_cast<double>(threads) <= static_cast<double>(cpus) + 0.5;
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

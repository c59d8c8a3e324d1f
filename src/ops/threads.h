// How rhead's OpenMP threads wait between parallel regions, chosen once per process.
//
// A decode token runs ~180 parallel regions with short serial gaps between them. Passive
// waits (sleep at once) pay a thread wake-up per region: on a quiet machine that made decode
// ~35% slower than spinning. Long spins collapse when the cores are shared: a spinning thread
// burns the slice its partner needs (1B q8_0 decode, 2 threads, one core busy: 0.7 tokens/s
// spinning, 7.2 passive). So: when every thread of ours can have a core that no other
// process is using (measured from /proc/stat over 250 ms at start-up; the load average trails
// by a minute), spin briefly (GOMP_SPINCOUNT 20000, about 0.2 ms, enough to bridge the gaps
// between regions) and then sleep; otherwise sleep at once. A policy the user set
// (OMP_WAIT_POLICY or GOMP_SPINCOUNT) is kept.
#pragma once
#include <string>

namespace rhead {

// Call first thing in main(). OpenMP reads its wait policy when the program loads, so when
// none is set this sets GOMP_SPINCOUNT and restarts the program once (execv of
// /proc/self/exe with the same arguments); when a policy is set it returns at once.
void apply_wait_policy(char** argv);

// The policy in effect, for benchmark headers: "GOMP_SPINCOUNT=20000", "OMP_WAIT_POLICY=passive", ...
std::string wait_policy_description();

}  // namespace rhead

// The KV-policy sweep figure: mean score against the KV cache kept, one line per (window,
// kind of full heads), each point labelled with its K, and the full cache as one point.
#pragma once
#include <string>
#include <vector>

#include "report/kv_sweep.h"
#include "report/drawing.h"

namespace rhead::report {

// Lines: for each window, "top-K full" and "random-K full" (mean over seeds), each starting at
// that window's K = 0 point (no head full) and running through its K in increasing order.
Drawing kv_sweep_plot(const std::vector<KvSweepPoint>& points, const std::string& title, const std::string& score_name);

}  // namespace rhead::report

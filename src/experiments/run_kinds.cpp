// The table of run kinds: each kind's writer of summaries and figures, for `rhead merge`.
#include "experiments/cot_run.h"
#include "experiments/experiment.h"
#include "experiments/qa_run.h"
#include "experiments/causal.h"
#include "experiments/detect.h"

namespace rhead {

const std::vector<RunKindOutputs>& run_kinds() {
  static const std::vector<RunKindOutputs> kinds = {
      {"detect", [](const RunDir& d) { return format_summary(write_detect_outputs(d)); }},
      {"niah", [](const RunDir& d) { return format_niah_summary(write_niah_outputs(d)); }},
      {"qa", write_qa_outputs},
      {"cot", write_cot_outputs},
  };
  return kinds;
}

}  // namespace rhead

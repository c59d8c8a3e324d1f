// The `rhead cot` experiment: every condition x prompting style x arithmetic item is one key
// (experiments/item_run.h) answered into one CotLine (tasks/task_records.h), and the outputs
// of its run directory, rebuilt from the lines: accuracy per condition and style
// (summary.json).
#pragma once
#include <string>
#include <vector>

#include "experiments/item_run.h"
#include "io/run_dir.h"
#include "model/loader.h"
#include "prompts/prompt.h"
#include "experiments/cot_task.h"

namespace rhead {

struct CotRunOptions {
  ItemRunOptions run;            // output, shard, conditions, settings, progress
  std::vector<CotItem> shots;    // few-shot exemplars
  std::vector<CotStyle> styles;  // each item runs in every style
  PromptFormat format;
  int max_new_tokens = 96;  // chain of thought; answer_only takes at most 16
};

// Runs (the shard of) every condition x style x item key not yet in OUT/results.jsonl;
// returns the directory with every line (write_cot_outputs writes the summary). `model`
// needs a tokenizer.
RunDir run_cot(const LoadedModel& model, const SessionOptions& session, const std::vector<CotItem>& items,
               const CotRunOptions& options);

// Writes summary.json and returns the printed table.
std::string write_cot_outputs(const RunDir& dir);

}  // namespace rhead

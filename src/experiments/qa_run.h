// The `rhead qa` experiment: every condition x QA item is one key (experiments/item_run.h)
// answered into one QaLine (tasks/task_records.h), and the outputs of its run directory,
// rebuilt from the lines: exact match and F1 per condition (summary.json), the masking sweep
// (sweep.json, sweep.{png,svg}) and the KV sweep (kv_sweep.*), as run.json's "sweep" and
// "kv_sweep" ask.
#pragma once
#include <string>
#include <vector>

#include "experiments/item_run.h"
#include "io/run_dir.h"
#include "model/heads.h"
#include "model/loader.h"
#include "prompts/prompt.h"
#include "experiments/qa_task.h"

namespace rhead {

struct QaRunOptions {
  ItemRunOptions run;     // output, shard, conditions, settings, progress
  bool sweep = false;     // write sweep.json and the sweep plot (run.json "sweep")
  bool kv_sweep = false;  // write kv_sweep.* (run.json "kv_sweep")
  PromptFormat format;
  int max_new_tokens = 32;
  std::vector<HeadId> support_heads;  // whose copies count for support_share (none: not measured)
};

// Runs (the shard of) every condition x item key not yet in OUT/results.jsonl; returns the
// directory with every line (write_qa_outputs writes the summaries). `model` needs a tokenizer.
RunDir run_qa(const LoadedModel& model, const SessionOptions& session, const std::vector<QaItem>& items,
              const QaRunOptions& options);

// Writes the files and returns the printed table.
std::string write_qa_outputs(const RunDir& dir);

}  // namespace rhead

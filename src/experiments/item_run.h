// What the item tasks (`rhead qa`, `rhead cot`) share as experiments: every condition (a mask
// under a KV policy, niah/causal's MaskSetting) x item key is one key of the run,
// "<condition label>|<item key>", condition-major; each key answers one item from an empty
// session state and writes one line whose mask and KV fields are its LineCondition.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/experiment.h"
#include "io/run_dir.h"
#include "model/loader.h"
#include "model/session.h"
#include "records/task_records.h"
#include "experiments/causal.h"

namespace rhead {

struct ItemRunOptions : RunFolderOptions {
  std::vector<MaskSetting> conditions;  // every mask x KV condition, in run order
  nlohmann::json settings;              // run.json "settings"; settings["fingerprint"] must match to resume
  // After each key: keys done and pending in this process, how many of the done were
  // answered right, seconds since the start.
  std::function<void(int done, int total, int correct, double elapsed_s)> progress;
};

// The keys of a data set's items: "<prefix>index:id" (ids need not be unique).
template <typename Item>
std::vector<std::string> numbered_item_keys(const std::vector<Item>& items, const std::string& prefix = "") {
  std::vector<std::string> keys;
  for (size_t i = 0; i < items.size(); ++i) keys.push_back(prefix + std::to_string(i) + ":" + items[i].id);
  return keys;
}

// The keys of an item run and the state each key runs in.
class ItemRun {
 public:
  // `item_keys`: one per item (and style), unique, without the condition. Error when the
  // model has no tokenizer or there is nothing to run.
  ItemRun(const LoadedModel& model, const SessionOptions& session, const ItemRunOptions& options,
          std::vector<std::string> item_keys);

  std::vector<std::string> keys() const;
  const MaskSetting& condition(size_t key) const { return options_.conditions[key / item_keys_.size()]; }
  size_t item(size_t key) const { return key % item_keys_.size(); }
  // The session of `condition`'s KV policy (a policy is fixed for a session's life): one at a
  // time, rebuilt, its old cache freed first, when the policy changes.
  Session& session(const MaskSetting& condition);
  // The fields every qa / cot line carries: the item, its sizes and time, and `condition` at
  // a prompt of `prompt_tokens`.
  ItemLine item_line(const MaskSetting& condition, const std::string& item_id, const std::string& question,
                     int64_t prompt_tokens, int64_t generated_tokens, double seconds) const;
  // Counts one answered key for the progress callback.
  void count_answer(bool correct) { correct_ += correct; }

  // Runs the pending keys of the shard of `experiment` (whose keys are keys()) into the
  // output directory with progress; returns the directory with every line.
  RunDir run(Experiment& experiment) const;

 private:
  const LoadedModel& model_;
  SessionOptions session_options_;
  const ItemRunOptions& options_;
  std::vector<std::string> item_keys_;
  std::unique_ptr<Session> session_;
  std::string session_kv_label_;  // KV label of session_
  int correct_ = 0;
};

}  // namespace rhead

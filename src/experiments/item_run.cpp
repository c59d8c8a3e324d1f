// Keys, sessions and line conditions of the item tasks (qa, cot).
#include "experiments/item_run.h"

#include "io/error.h"

namespace rhead {

ItemRun::ItemRun(const LoadedModel& model, const SessionOptions& session, const ItemRunOptions& options,
                 std::vector<std::string> item_keys)
    : model_(model), session_options_(session), options_(options), item_keys_(std::move(item_keys)) {
  model_.require_tokenizer();
  if (options_.conditions.empty()) throw Error("no mask setting to run");
  if (item_keys_.empty()) throw Error("no item to run");
}

std::vector<std::string> ItemRun::keys() const {
  std::vector<std::string> out;
  for (const MaskSetting& m : options_.conditions)
    for (const std::string& item : item_keys_) out.push_back(m.label + "|" + item);
  return out;
}

Session& ItemRun::session(const MaskSetting& condition) {
  if (!session_ || session_kv_label_ != condition.kv.label) {
    session_.reset();  // free the old cache first
    SessionOptions so = session_options_;
    if (condition.kv.policy.active()) so.kv_policy = condition.kv.policy;
    session_ = std::make_unique<Session>(model_.model, so);
    session_kv_label_ = condition.kv.label;
  }
  return *session_;
}

ItemLine ItemRun::item_line(const MaskSetting& condition, const std::string& item_id, const std::string& question,
                            int64_t prompt_tokens, int64_t generated_tokens, double seconds) const {
  ItemLine l;
  l.item_id = item_id;
  l.question = question;
  l.prompt_tokens = prompt_tokens;
  l.generated_tokens = generated_tokens;
  l.seconds = seconds;
  l.condition =
      rhead::line_condition(condition, model_.model->config.head_dim, session_options_.kv_type(), prompt_tokens);
  return l;
}

RunDir ItemRun::run(Experiment& experiment) const {
  ExperimentRunOptions ro;
  static_cast<RunFolderOptions&>(ro) = options_;
  if (options_.progress)
    ro.progress = [&](int done, int total, const nlohmann::json&, double elapsed) {
      options_.progress(done, total, correct_, elapsed);
    };
  return run_experiment(experiment, ro);
}

}  // namespace rhead

// Head-mask specifications ("heads:L-H,...", "kv:L-G,...") and mean-mode calibration.
#include "model/head_mask_spec.h"

#include <charconv>
#include <functional>
#include <vector>

#include "io/error.h"
#include "io/text.h"

namespace rhead {
namespace {

[[noreturn]] void bad_spec(const std::string& spec, const std::string& problem) {
  throw Error("mask '" + spec + "': " + problem);
}

bool parse_int(const std::string& s, int& out) {
  if (s.empty()) return false;
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, out);
  return ec == std::errc() && p == end && out >= 0;
}

// One parser per spec kind: adds the heads named by `args` to `mask`.
using KindParser = std::function<void(const std::string& spec, const std::string& args, const ModelConfig& c,
                                      HeadMask& mask)>;

void parse_heads(const std::string& spec, const std::string& args, const ModelConfig& c, HeadMask& mask) {
  for (const std::string& item : split_on(args, ',')) {
    const auto [layer, head] = parse_layer_head_pair(item, "mask '" + spec + "'");
    if (layer >= c.n_layer)
      bad_spec(spec, "layer " + std::to_string(layer) + " does not exist (the model has " + std::to_string(c.n_layer) +
                         " layers)");
    if (head >= c.n_head)
      bad_spec(spec, "head " + std::to_string(head) + " does not exist (the model has " + std::to_string(c.n_head) +
                         " query heads per layer)");
    mask.add(layer, head);
  }
}

void parse_kv(const std::string& spec, const std::string& args, const ModelConfig& c, HeadMask& mask) {
  for (const std::string& item : split_on(args, ',')) {
    const auto [layer, group] = parse_layer_head_pair(item, "mask '" + spec + "'");
    if (layer >= c.n_layer)
      bad_spec(spec, "layer " + std::to_string(layer) + " does not exist (the model has " + std::to_string(c.n_layer) +
                         " layers)");
    if (group >= c.n_kv_head)
      bad_spec(spec, "KV group " + std::to_string(group) + " does not exist (the model has " +
                         std::to_string(c.n_kv_head) + " KV heads per layer)");
    const int g = c.group_size();
    for (int h = group * g; h < (group + 1) * g; ++h) mask.add(layer, h);
  }
}

const std::vector<std::pair<std::string, KindParser>>& kinds() {
  static const std::vector<std::pair<std::string, KindParser>> table = {
      {"heads", parse_heads},
      {"kv", parse_kv},
  };
  return table;
}

}  // namespace

std::pair<int, int> parse_layer_head_pair(const std::string& text, const std::string& what) {
  const size_t dash = text.find('-');
  int a = 0, b = 0;
  if (dash == std::string::npos || !parse_int(text.substr(0, dash), a) || !parse_int(text.substr(dash + 1), b))
    throw Error(what + ": '" + text + "' is not LAYER-INDEX (two non-negative integers, e.g. 3-7)");
  return {a, b};
}

HeadMask parse_head_mask(const std::string& spec, const ModelConfig& config) {
  HeadMask mask(config.n_layer, config.n_head);
  if (spec == "none") return mask;
  const size_t colon = spec.find(':');
  std::string names;
  for (const auto& [name, parser] : kinds()) names += (names.empty() ? "" : ", ") + name + ":...";
  if (colon == std::string::npos) bad_spec(spec, "expected KIND:ARGS with KIND one of " + names + ", or none");
  const std::string kind = spec.substr(0, colon), args = spec.substr(colon + 1);
  for (const auto& [name, parser] : kinds())
    if (name == kind) {
      if (args.empty()) bad_spec(spec, "no heads listed after '" + kind + ":'");
      parser(spec, args, config, mask);
      return mask;
    }
  bad_spec(spec, "unknown kind '" + kind + "' (expected " + names + ", or none)");
}

std::vector<float> record_head_means(std::shared_ptr<const Model> model, std::span<const int32_t> tokens,
                                     const SessionOptions& options) {
  if (tokens.empty()) throw Error("mean-ablation calibration needs at least one token");
  const ModelConfig& c = model->config;
  SessionOptions so = options;
  if (so.n_ctx > 0 && so.n_ctx < static_cast<int64_t>(tokens.size())) so.n_ctx = static_cast<int64_t>(tokens.size());
  Session session(model, so);
  HeadMeanRecorder recorder(c.n_layer, c.n_head, c.head_dim);
  ForwardOptions fo;
  fo.record_means = &recorder;
  session.forward(tokens, fo);
  return recorder.means();
}

}  // namespace rhead

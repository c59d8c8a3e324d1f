// Runs a reference fixture's tokens through a loaded model and measures the logits against it.
// A fixture (tests/data/model/*.json, tests/data/model/hf/*.json) holds "tokens", "positions"
// and "logits" ([positions][n_vocab]); shared by the PyTorch, GGUF and transformers tests.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "model/session.h"

namespace rhead::testing {

// Max |logit - reference| over the fixture's positions, with an f32 KV cache whose capacity is
// the token count (LongRoPE picks its factors by capacity).
inline double fixture_max_logit_diff(std::shared_ptr<const Model> model, const nlohmann::json& fx) {
  const auto tokens = fx.at("tokens").get<std::vector<int32_t>>();
  SessionOptions so;
  so.kv_f16 = false;
  so.n_ctx = static_cast<int64_t>(tokens.size());
  Session s(model, so);
  ForwardOptions fo;
  fo.all_logits = true;
  const auto logits = s.forward(tokens, fo);
  const auto expected = fx.at("logits").get<std::vector<std::vector<float>>>();
  const auto positions = fx.at("positions").get<std::vector<int>>();
  const int64_t V = model->config.n_vocab;
  if (logits.size() != tokens.size() * static_cast<size_t>(V)) return INFINITY;
  double max_diff = 0;
  for (size_t i = 0; i < positions.size(); ++i)
    for (int64_t v = 0; v < V; ++v)
      max_diff = std::max(max_diff, std::fabs(double(logits[positions[i] * V + v]) - expected[i][v]));
  return max_diff;
}

}  // namespace rhead::testing

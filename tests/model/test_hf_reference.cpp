// rhead against Hugging Face transformers' own modeling code. scripts/hf_reference.py (run
// where transformers is installed) writes tests/data/model/hf/<fixture>.json: the config.json
// transformers wrote for each random fixture ("hf_config") and the logits its
// AutoModelForCausalLM computed. This test writes that config with the same splitmix64
// weights, loads it with rhead and compares. Fixtures whose file is not committed are skipped.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/loader.h"
#include "model/random_weights.h"
#include "model/reference_fixture.h"
#include "model/session.h"
#include "test_support.h"

namespace rhead {
namespace {

using nlohmann::json;

class HfReference : public ::testing::TestWithParam<std::string> {};

TEST_P(HfReference, MatchesTransformers) {
  const std::string path = testing::test_data_path("model/hf/" + GetParam() + ".json");
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no " << path << " (written by scripts/hf_reference.py)";
  const json fx = json::parse(testing::read_text_file(path));
  const uint64_t seed = fx.at("seed");
  testing::TempDir dir("rhead-hf-" + GetParam());
  std::ofstream(dir / "config.json") << fx.at("hf_config").dump(2);
  testing::write_safetensors_f32(dir / "model.safetensors", testing::random_hf_weights(fx.at("config"), seed));
  auto model = load_model(dir.path).model;
  const double max_diff = testing::fixture_max_logit_diff(model, fx);
  std::printf("%s vs transformers %s (%s): max |dlogit| = %.3g\n", GetParam().c_str(),
              fx.at("transformers_version").get<std::string>().c_str(), fx.at("hf_class").get<std::string>().c_str(),
              max_diff);
  EXPECT_LE(max_diff, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HfReference,
                         ::testing::Values("random_mixtral", "random_qwen3", "random_qwen3moe", "random_gemma2",
                                           "random_phi3", "random_phi3_short", "random_mistral", "random_qwen2",
                                           "random_llama3", "random_linear"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace rhead

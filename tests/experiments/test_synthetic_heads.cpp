// Previous-token, duplicate-token and induction head scores: against the eager PyTorch
// reference (scripts/torch_reference.py, fixture niah_tiny_synthetic_heads.json) on niah-tiny,
// and on builtin:induction, whose heads are known by construction (0-1 previous-token,
// 1-1 and 1-2 induction).
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "experiments/synthetic_heads.h"
#include "io/error.h"
#include "model/loader.h"
#include "model/session.h"
#include "test_support.h"

namespace {

using namespace rhead;
using nlohmann::json;

// Heads sorted by mean score, best first (ties: key order).
std::vector<std::string> ranked(const json& scores) {
  std::vector<std::pair<double, std::string>> v;
  for (auto it = scores.begin(); it != scores.end(); ++it) {
    double sum = 0;
    for (const auto& s : it.value()) sum += s.get<double>();
    v.push_back({-sum / static_cast<double>(it.value().size()), it.key()});
  }
  std::sort(v.begin(), v.end());
  std::vector<std::string> out;
  for (const auto& [s, k] : v) out.push_back(k);
  return out;
}

TEST(SyntheticHeads, NiahTinyMatchesTheTorchReference) {
  const std::string model = rhead::testing::shared_path("models/niah-tiny/hf-f32");
  RHEAD_REQUIRE_FILE(model + "/model.safetensors");
  std::ifstream in(rhead::testing::test_data_path("model/niah_tiny_synthetic_heads.json"));
  ASSERT_TRUE(in.good()) << "run scripts/torch_reference.py";
  const json fx = json::parse(in);
  const LoadedModel lm = load_model(model);
  SyntheticSequence seq;
  seq.tokens = fx["tokens"].get<std::vector<int32_t>>();
  seq.offset = fx["offset"].get<int64_t>();
  seq.n = fx["n"].get<int64_t>();
  const ProbeRecord record = full_attention_rows(lm, seq.tokens);
  int checked = 0;
  for (SyntheticPattern p : synthetic_patterns()) {
    const HeadGrid<double> got = synthetic_scores(record, seq, p);
    const json& want = fx["scores"][synthetic_pattern_name(p)];
    for (int l = 0; l < got.n_layer; ++l)
      for (int h = 0; h < got.n_head; ++h) {
        const std::string key = HeadId{l, h}.key();
        EXPECT_NEAR(got.at(l, h), want[key].get<double>(), 1e-3) << synthetic_pattern_name(p) << " " << key;
        ++checked;
      }
  }
  EXPECT_EQ(checked, 3 * 18);
  // What the reference says about this model: layer 2 holds the induction heads.
  EXPECT_GT(fx["scores"]["induction"]["2-0"].get<double>(), 0.9);
}

TEST(SyntheticHeads, BuiltinInductionHeadsAreFound) {
  const LoadedModel lm = load_model("builtin:induction");
  SyntheticOptions o;
  o.sequences = 2;
  o.length = 24;
  const auto scores = detect_synthetic_heads(lm, synthetic_patterns(), o);
  ASSERT_EQ(scores.size(), 3u);
  const auto prev = ranked(scores[0]), induction = ranked(scores[2]);
  EXPECT_EQ(prev[0], "0-1");
  EXPECT_EQ((std::set<std::string>{induction[0], induction[1]}), (std::set<std::string>{"1-1", "1-2"}));
  for (const auto& s : scores[2]["1-1"]) EXPECT_GT(s.get<double>(), 0.95);
  EXPECT_EQ(scores[2]["1-1"].size(), 2u);  // one score per sequence
}

TEST(SyntheticHeads, SequencesAreRepeatedDistinctTokens) {
  const LoadedModel lm = load_model("builtin:induction");
  const auto a = synthetic_sequence(*lm.tokenizer, lm.model->config.n_vocab, 16, 3, 0);
  const auto b = synthetic_sequence(*lm.tokenizer, lm.model->config.n_vocab, 16, 3, 1);
  ASSERT_EQ(a.tokens.size(), static_cast<size_t>(a.offset + 32));
  EXPECT_NE(a.tokens, b.tokens);
  std::set<int32_t> first(a.tokens.begin() + a.offset, a.tokens.begin() + a.offset + 16);
  EXPECT_EQ(first.size(), 16u);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(a.tokens[a.offset + i], a.tokens[a.offset + 16 + i]);
  EXPECT_EQ(a.tokens, synthetic_sequence(*lm.tokenizer, lm.model->config.n_vocab, 16, 3, 0).tokens);
}

TEST(SyntheticHeads, MethodListIsChecked) {
  EXPECT_EQ(parse_detect_methods("copy").synthetic.size(), 0u);
  EXPECT_EQ(parse_detect_methods("copy,induction,previous-token").synthetic.size(), 2u);
  EXPECT_THROW(parse_detect_methods("induction"), Error);  // copy always runs
  EXPECT_THROW(parse_detect_methods("copy,copy"), Error);
  EXPECT_THROW(parse_detect_methods("copy,attention"), Error);
  const DetectMethods m = parse_detect_methods("copy,qrhead,lookback,induction");
  EXPECT_TRUE(m.qrhead);
  EXPECT_TRUE(m.lookback);
  EXPECT_EQ(m.synthetic.size(), 1u);
  EXPECT_FALSE(parse_detect_methods("copy,lookback").qrhead);
  EXPECT_FALSE(parse_detect_methods("copy").any());
}

TEST(SyntheticHeads, DetectWritesEachMethodAndTheAgreementTable) {
  rhead::testing::MkdtempDir d("rhead_test_methods_");
  const auto r =
      rhead::testing::run_rhead({"detect", "-m", "builtin:induction", "--lengths", "250:400:2", "--depths", "2",
                                 "--methods", "copy,induction,previous-token", "-q", "-o", d.sub("run")},
                                d.path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(d.sub("run") + "/head_score.induction.json");
  ASSERT_TRUE(in.good());
  const json induction = json::parse(in);
  EXPECT_EQ(induction.size(), 8u);
  std::ifstream sin(d.sub("run") + "/summary.json");
  const json summary = json::parse(sin);
  EXPECT_EQ(summary["methods"]["methods"], (json{"copy", "induction", "previous-token"}));
  ASSERT_EQ(summary["methods"]["pairs"].size(), 3u);
  // copy and induction pick the same two heads on this model.
  const json& copy_induction = summary["methods"]["pairs"][0];
  EXPECT_EQ(copy_induction["b"], "induction");
  EXPECT_GT(copy_induction["spearman"].get<double>(), 0.5);
  EXPECT_EQ(copy_induction["top_k_overlap"][0]["k"], 5);
}

}  // namespace

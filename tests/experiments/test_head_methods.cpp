// qrhead and lookback (experiments/head_methods.h): against the eager PyTorch reference
// (scripts/torch_reference.py, fixture niah_tiny_head_methods.json) on niah-tiny, the document
// rule and the scoring arithmetic by hand, and `rhead detect --methods` writing score files in
// the reference format that `rhead compare` reads, with the agreement table in summary.json.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "analysis/run_files.h"
#include "analysis/score_map.h"
#include "experiments/head_methods.h"
#include "io/error.h"
#include "model/generate.h"
#include "model/loader.h"
#include "model/session.h"
#include "test_support.h"

namespace {

using namespace rhead;
using nlohmann::json;

json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "missing " << path;
  return json::parse(in);
}

TEST(HeadMethods, NiahTinyMatchesTheTorchReference) {
  const std::string model = rhead::testing::shared_path("models/niah-tiny/hf-f32");
  RHEAD_REQUIRE_FILE(model + "/model.safetensors");
  const json fx = read_json(rhead::testing::test_data_path("model/niah_tiny_head_methods.json"));
  const auto tokens = fx["tokens"].get<std::vector<int32_t>>();
  const auto null_after = fx["null_after"].get<std::vector<int32_t>>();
  const TokenSpan context{fx["context"][0].get<int64_t>(), fx["context"][1].get<int64_t>()};
  const TokenSpan needle{fx["needle"][0].get<int64_t>(), fx["needle"][1].get<int64_t>()};

  // The documents: the reference cuts them by the same rule, written on its own.
  int gold = -1;
  const std::vector<TokenSpan> docs = qrhead_documents(context, needle, kQrheadDocTokens, &gold);
  ASSERT_EQ(docs.size(), fx["documents"].size());
  for (size_t i = 0; i < docs.size(); ++i) {
    EXPECT_EQ(docs[i].begin, fx["documents"][i][0].get<int64_t>());
    EXPECT_EQ(docs[i].end, fx["documents"][i][1].get<int64_t>());
  }
  ASSERT_EQ(gold, fx["gold"].get<int>());

  // One pass as the runner makes it: prefill observing the question rows, greedy decode with
  // the lookback probe, then the null question on the same prefix. With an f32 KV cache the
  // scores match the float64 reference to float rounding; with the f16 cache that detection
  // runs use, within 1e-3 (the deepest layer's sharp heads differ most).
  const LoadedModel lm = load_model(model);
  const ModelConfig& c = lm.model->config;
  for (const bool kv_f16 : {false, true}) {
    SCOPED_TRACE(kv_f16 ? "f16 KV cache" : "f32 KV cache");
    const double tol = kv_f16 ? 1e-3 : 1e-5;
    SessionOptions so;
    so.kv_f16 = kv_f16;
    Session session(lm.model, so);
    const int64_t prefill_end = static_cast<int64_t>(tokens.size()) - 1;
    const ProbeRequest question = qrhead_question_probes(context.end, prefill_end);
    ProbeRecord question_record;
    ProbeRequest step_probes;
    step_probes.argmax = false;
    LookbackAccumulator lookback(c.n_layer, c.n_head, context.end);
    lookback.request(step_probes);
    GreedyOptions go;
    go.max_new_tokens = static_cast<int>(fx["generated"].size());
    go.probes = &step_probes;
    go.prefill_probes = &question;
    go.prefill_probe_out = &question_record;
    go.on_token = [&](const DecodeStep& step) {
      lookback.observe(*step.probes);
      return true;
    };
    const GenerateResult g = generate_greedy(session, tokens, go);
    ASSERT_EQ(g.tokens, fx["generated"].get<std::vector<int32_t>>()) << "the greedy answers differ";
    const ProbeRecord null_record = qrhead_null_record(session, context.end, null_after, nullptr);
    EXPECT_EQ(session.n_past(), context.end);

    const std::vector<double> qr = qrhead_scores(question_record, null_record, docs[static_cast<size_t>(gold)]);
    const std::vector<double> lb = lookback.scores();
    int checked = 0;
    double max_qr = 0;
    for (int l = 0; l < c.n_layer; ++l)
      for (int h = 0; h < c.n_head; ++h) {
        const std::string key = HeadId{l, h}.key();
        const size_t i = static_cast<size_t>(l) * c.n_head + h;
        EXPECT_NEAR(qr[i], fx["scores"]["qrhead"][key].get<double>(), tol) << "qrhead " << key;
        EXPECT_NEAR(lb[i], fx["scores"]["lookback"][key].get<double>(), tol) << "lookback " << key;
        max_qr = std::max(max_qr, qr[i]);
        ++checked;
      }
    EXPECT_EQ(checked, 18);
    // Not a vacuous match: some head puts the question's attention on the gold document.
    EXPECT_GT(max_qr, 0.1);
  }
}

TEST(HeadMethods, DocumentsKeepTheNeedleWhole) {
  int gold = -1;
  // Cut at 65 falls inside the needle [60, 70): it moves to 70.
  auto docs = qrhead_documents({1, 150}, {60, 70}, 64, &gold);
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0].begin, 1);
  EXPECT_EQ(docs[0].end, 70);
  EXPECT_EQ(docs[1].begin, 70);
  EXPECT_EQ(docs[1].end, 134);
  EXPECT_EQ(docs[2].end, 150);
  EXPECT_EQ(gold, 0);
  // A needle starting on a cut is the first token of the next document.
  docs = qrhead_documents({0, 100}, {50, 60}, 50, &gold);
  EXPECT_EQ(gold, 1);
  EXPECT_EQ(docs[1].begin, 50);
  EXPECT_THROW(qrhead_documents({10, 100}, {5, 20}, 64, &gold), Error);
  EXPECT_THROW(qrhead_documents({0, 100}, {5, 20}, 0, &gold), Error);
}

TEST(HeadMethods, DocumentScoreDropsTokensBelowTwoSigma) {
  // Nine zeros and -1: mean -0.1, sample std sqrt(0.1), threshold -0.732: the -1 is dropped.
  std::vector<double> cal(10, 0.0);
  cal[9] = -1.0;
  EXPECT_DOUBLE_EQ(qrhead_document_score(cal, {0, 10}), 0.0);
  // Without the outlier every token stays.
  std::vector<double> flat = {0.5, 0.25, -0.25, 1.0};
  EXPECT_DOUBLE_EQ(qrhead_document_score(flat, {0, 4}), 1.5);
  EXPECT_DOUBLE_EQ(qrhead_document_score(flat, {3, 4}), 1.0);  // one token: kept
}

TEST(HeadMethods, LookbackRatioUsesMeansOverEachSide) {
  // Half the mass on 100 context keys, half on 10 later keys: (0.005) / (0.005 + 0.05).
  EXPECT_NEAR(lookback_ratio(0.5, 100, 10), 0.005 / 0.055, 1e-12);
  EXPECT_DOUBLE_EQ(lookback_ratio(0.0, 100, 10), 1.0);
  EXPECT_DOUBLE_EQ(lookback_ratio(1.0, 100, 10), 0.0);
}

TEST(HeadMethods, DetectWritesReferenceScoreFilesThatCompareReads) {
  const std::string model = rhead::testing::shared_path("models/niah-tiny/niah-tiny-f32.gguf");
  RHEAD_REQUIRE_FILE(model);
  rhead::testing::MkdtempDir d("rhead_test_head_methods_");
  const std::vector<std::string> args = {"detect",
                                         "-m",
                                         model,
                                         "--needles",
                                         rhead::testing::shared_path("models/niah-tiny/needles.jsonl"),
                                         "--haystack",
                                         rhead::testing::shared_path("data/haystack/paul_graham_essays"),
                                         "--prompt-template",
                                         "{context}\nQuestion: {question}\nAnswer:",
                                         "--lengths",
                                         "300:400:2",
                                         "--depths",
                                         "2",
                                         "-q",
                                         "-o",
                                         d.sub("run")};
  std::vector<std::string> with_methods = args;
  with_methods.insert(with_methods.end(), {"--methods", "copy,qrhead,lookback"});
  const auto r = rhead::testing::run_rhead(with_methods, d.path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const int tests = read_json(d.sub("run") + "/summary.json")["tests"].get<int>();
  ASSERT_GT(tests, 0);
  for (const std::string method : {"qrhead", "lookback"}) {
    const std::string path = d.sub("run") + "/head_score." + method + ".json";
    const json scores = read_json(path);
    // The reference format: every head "L-H" of the 3 x 6 grid, one score per test.
    ASSERT_EQ(scores.size(), 18u) << method;
    for (int l = 0; l < 3; ++l)
      for (int h = 0; h < 6; ++h) {
        const json& list = scores.at(HeadId{l, h}.key());
        ASSERT_TRUE(list.is_array());
        EXPECT_EQ(list.size(), static_cast<size_t>(tests)) << method;
        for (const auto& v : list) EXPECT_TRUE(v.is_number());
      }
    const analysis::ScoreMap map = analysis::read_head_score_json(path);
    EXPECT_EQ(map.n_layer, 3);
    EXPECT_EQ(map.n_head, 6);
  }
  // The lookback ratio lies in [0, 1].
  const json lookback = read_json(d.sub("run") + "/head_score.lookback.json");
  for (const auto& [key, list] : lookback.items())
    for (const auto& v : list) {
      EXPECT_GE(v.get<double>(), 0.0) << key;
      EXPECT_LE(v.get<double>(), 1.0) << key;
    }
  const auto cmp = rhead::testing::run_rhead(
      {"compare", d.sub("run") + "/head_score.qrhead.json", d.sub("run") + "/head_score.lookback.json"}, d.path);
  ASSERT_EQ(cmp.exit_code, 0) << cmp.err;
  EXPECT_NE(cmp.out.find("Spearman"), std::string::npos) << cmp.out;
  const auto cmp_copy = rhead::testing::run_rhead(
      {"compare", d.sub("run") + "/head_score.json", d.sub("run") + "/head_score.qrhead.json"}, d.path);
  ASSERT_EQ(cmp_copy.exit_code, 0) << cmp_copy.err;

  // summary.json: the agreement of every pair of methods, Spearman and top-K overlap.
  const json summary = read_json(d.sub("run") + "/summary.json");
  EXPECT_EQ(summary["methods"]["methods"], (json{"copy", "qrhead", "lookback"}));
  ASSERT_EQ(summary["methods"]["pairs"].size(), 3u);
  for (const auto& p : summary["methods"]["pairs"]) {
    ASSERT_TRUE(p["spearman"].is_number()) << p.dump();
    EXPECT_GE(p["spearman"].get<double>(), -1.0);
    EXPECT_LE(p["spearman"].get<double>(), 1.0);
    EXPECT_EQ(p["top_k_overlap"][0]["k"], 5);
    EXPECT_LE(p["top_k_overlap"][0]["shared"].get<int>(), 5);
  }
  // The report shows the same table.
  const auto report = rhead::testing::run_rhead({"report", d.sub("run"), "-o", d.sub("report.html")}, d.path);
  ASSERT_EQ(report.exit_code, 0) << report.err;
  const std::string html = rhead::testing::read_text_file(d.sub("report.html"));
  EXPECT_NE(html.find("Agreement between detection methods"), std::string::npos);
  EXPECT_NE(html.find("<td>qrhead vs lookback</td>"), std::string::npos);
  // The methods belong to the run: resuming the folder without them is refused, untouched.
  const auto before = rhead::testing::file_snapshot(d.sub("run"));
  const auto plain = rhead::testing::run_rhead(args, d.path);
  EXPECT_NE(plain.exit_code, 0);
  EXPECT_NE(plain.err.find("niah_methods"), std::string::npos) << plain.err;
  EXPECT_EQ(rhead::testing::file_snapshot(d.sub("run")), before);
}

TEST(HeadMethods, QrheadRefusesAQuestionBeforeTheContextBeforeWriting) {
  const std::string model = rhead::testing::shared_path("models/niah-tiny/niah-tiny-f32.gguf");
  RHEAD_REQUIRE_FILE(model);
  rhead::testing::MkdtempDir d("rhead_test_qrhead_template_");
  const auto r = rhead::testing::run_rhead(
      {"detect", "-m", model, "--needles", rhead::testing::shared_path("models/niah-tiny/needles.jsonl"), "--haystack",
       rhead::testing::shared_path("data/haystack/paul_graham_essays"), "--prompt-template",
       "Question: {question}\n{context}\nAnswer:", "--lengths", "300:400:2", "--depths", "2", "-q", "--methods",
       "copy,qrhead", "-o", d.sub("run")},
      d.path);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--methods qrhead: the prompt template puts the question before the context"), std::string::npos)
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(d.sub("run")));
}

TEST(HeadMethods, AgreementTableIsReadStrictly) {
  const json ok = json::parse(R"({"methods": {"pairs": [{"a": "copy", "b": "qrhead", "spearman": 0.5,
      "pearson": null, "top_k_overlap": [{"k": 5, "shared": 3, "jaccard": 0.43}]}]}})");
  const auto pairs = analysis::method_agreement_from_json(ok, "summary.json");
  ASSERT_EQ(pairs.size(), 1u);
  EXPECT_EQ(pairs[0].b, "qrhead");
  EXPECT_DOUBLE_EQ(pairs[0].spearman, 0.5);
  EXPECT_TRUE(std::isnan(pairs[0].pearson));
  EXPECT_EQ(pairs[0].top_k[0].shared, 3);
  EXPECT_TRUE(analysis::method_agreement_from_json(json::object(), "summary.json").empty());
  json bad = ok;
  bad["methods"]["pairs"][0]["spearman"] = 1.5;
  EXPECT_NE(
      rhead::testing::error_of([&] { analysis::method_agreement_from_json(bad, "summary.json"); }).find("summary.json"),
      std::string::npos);
  bad = ok;
  bad["methods"]["pairs"][0]["top_k_overlap"][0]["shared"] = 6;
  EXPECT_THROW(analysis::method_agreement_from_json(bad, "summary.json"), Error);
}

}  // namespace

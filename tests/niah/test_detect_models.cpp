// Detection end to end on trained models from ../shared/models: niah-tiny in its HF and
// GGUF forms (the README's needles, prompt template and essays; a reduced grid to keep the
// test short) finds its six layer-2 retrieval heads in both forms with matching scores,
// prefix reuse changes nothing, and stories260K runs cleanly with its tokenizer.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <unistd.h>

#include "model/loader.h"
#include "experiments/detect.h"
#include "test_support.h"

namespace {

using namespace rhead;
using nlohmann::json;
namespace fs = std::filesystem;

struct TempDir : rhead::testing::MkdtempDir {
  TempDir() : MkdtempDir("rhead_test_detect_models_") {}
};

using rhead::testing::read_text_file;

const std::string kTiny = "models/niah-tiny/";
const std::string kEssays = "data/haystack/paul_graham_essays";

// The README's set-up with a reduced grid: lengths 300, 400, 500 and depths 0, 25, ..., 100
// (45 tests instead of 150).
NiahRunConfig niah_tiny_config(bool prefix_reuse) {
  NiahRunConfig c;
  c.needle_sets = read_needle_sets(rhead::testing::shared_path(kTiny + "needles.jsonl"));
  c.default_haystack_dir = rhead::testing::shared_path(kEssays);
  c.grid.lengths = parse_lengths("300:500:3");
  c.grid.depths = depths_from_count(5);
  c.format.base_template = "{context}\nQuestion: {question}\nAnswer:";
  c.prefix_reuse = prefix_reuse;
  return c;
}

struct DetectRun {
  DetectSummary summary;
  std::map<std::string, TestResult> results;  // by test id
  json head_score;
};

DetectRun detect(const std::string& model_path, const NiahRunConfig& config, const std::string& dir) {
  LoadedModel lm = load_model(model_path);
  NiahRunner runner(lm, SessionOptions{}, config);
  DetectOptions o;
  o.output_dir = dir;
  o.settings = {{"fingerprint", {{"model", model_path}}}};
  DetectRun run;
  run.summary = run_detect(runner, o);
  std::istringstream in(read_text_file(dir + "/results.jsonl"));
  std::string line;
  while (std::getline(in, line)) {
    TestResult r = test_result_from_json(json::parse(line), dir);
    EXPECT_TRUE(run.results.emplace(r.test_id, r).second) << r.test_id << " twice";
  }
  run.head_score = json::parse(read_text_file(dir + "/head_score.json"));
  return run;
}

std::map<std::string, double> means_of(const DetectSummary& s) {
  std::map<std::string, double> m;
  for (const auto& h : s.heads) m[h.id.key()] = h.mean;
  return m;
}

std::set<std::string> above(const DetectSummary& s, double threshold) {
  std::set<std::string> out;
  for (const auto& h : s.heads)
    if (h.mean > threshold) out.insert(h.id.key());
  return out;
}

// The model's circuit: layers 0 and 1 build the previous-token signal, all six layer-2
// heads copy.
void expect_niah_tiny_heads(const DetectRun& run, const std::string& form) {
  const DetectSummary& s = run.summary;
  EXPECT_EQ(s.tests, 45) << form;
  EXPECT_GT(s.counted, 5) << form;
  for (const auto& [key, mean] : means_of(s)) {
    if (key[0] == '2')
      EXPECT_GT(mean, 0.1) << form << " head " << key;
    else
      EXPECT_EQ(mean, 0.0) << form << " head " << key;
  }
  EXPECT_EQ(s.count_above_0_1, 6) << form;
  for (const auto& [id, r] : run.results) {
    EXPECT_GE(r.span_begin, 0) << form << " " << id << ": needle span not found";
    EXPECT_GT(r.span_end, r.span_begin) << form << " " << id;
    EXPECT_EQ(r.counted, r.rouge_recall > 50.0) << form << " " << id;
    EXPECT_GT(r.generated_tokens, 0) << form << " " << id;
    EXPECT_LE(r.generated_tokens, 50) << form << " " << id;
  }
}

class NiahTinyDetect : public ::testing::Test {
 protected:
  // Each form is run once per process, on first use (ctest runs each test in a process of
  // its own, so a test pays only for the runs it reads).
  static void TearDownTestSuite() {
    delete gguf_;
    delete hf_;
    delete dir_;
    gguf_ = hf_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    RHEAD_REQUIRE_FILE(rhead::testing::shared_path(kTiny + "niah-tiny-f32.gguf"));
    RHEAD_REQUIRE_FILE(rhead::testing::shared_path(kTiny + "hf-f32/model.safetensors"));
    RHEAD_REQUIRE_FILE(rhead::testing::shared_path(kTiny + "needles.jsonl"));
    RHEAD_REQUIRE_FILE(rhead::testing::shared_path(kEssays));
    if (!dir_) dir_ = new TempDir();
  }
  static const DetectRun& gguf() {
    if (!gguf_)
      gguf_ = new DetectRun(
          detect(rhead::testing::shared_path(kTiny + "niah-tiny-f32.gguf"), niah_tiny_config(true), dir_->sub("gguf")));
    return *gguf_;
  }
  static const DetectRun& hf() {
    if (!hf_)
      hf_ =
          new DetectRun(detect(rhead::testing::shared_path(kTiny + "hf-f32"), niah_tiny_config(true), dir_->sub("hf")));
    return *hf_;
  }
  static TempDir* dir_;
  static DetectRun* gguf_;
  static DetectRun* hf_;
};
TempDir* NiahTinyDetect::dir_ = nullptr;
DetectRun* NiahTinyDetect::gguf_ = nullptr;
DetectRun* NiahTinyDetect::hf_ = nullptr;

TEST_F(NiahTinyDetect, GgufFindsTheSixLayerTwoHeads) { expect_niah_tiny_heads(gguf(), "gguf"); }

TEST_F(NiahTinyDetect, HfFindsTheSixLayerTwoHeads) { expect_niah_tiny_heads(hf(), "hf"); }

// The two forms tokenize the essays slightly differently: tokenizer.model (libsentencepiece
// rules) collapses runs of spaces, the GGUF's embedded vocabulary (llama.cpp rules) keeps
// them, and the essays put two spaces after many periods. Their prompts therefore differ in
// places, and so do a few answers; the score maps must still agree.
TEST_F(NiahTinyDetect, HfAndGgufScoresMatch) {
  EXPECT_EQ(above(hf().summary, 0.1), above(gguf().summary, 0.1));
  const auto m_hf = means_of(hf().summary), m_gguf = means_of(gguf().summary);
  ASSERT_EQ(m_hf.size(), m_gguf.size());
  for (const auto& [key, mean] : m_hf) EXPECT_NEAR(mean, m_gguf.at(key), 0.05) << key;
  EXPECT_NEAR(hf().summary.niah_accuracy, gguf().summary.niah_accuracy, 0.1);
  ASSERT_EQ(hf().results.size(), gguf().results.size());
  for (const auto& [id, r] : hf().results) EXPECT_EQ(r.prompt_tokens, gguf().results.at(id).prompt_tokens) << id;
}

// With one tokenizer for both, the F32 GGUF weights and the F32 safetensors give the same
// run: same prompts, answers and per-test head scores.
TEST_F(NiahTinyDetect, GgufWeightsWithTheHfTokenizerReproduceTheHfRun) {
  TempDir d;
  LoadOptions lo;
  lo.tokenizer_path = rhead::testing::shared_path(kTiny + "hf-f32/tokenizer.model");
  LoadedModel lm = load_model(rhead::testing::shared_path(kTiny + "niah-tiny-f32.gguf"), lo);
  NiahRunner runner(lm, SessionOptions{}, niah_tiny_config(true));
  DetectOptions o;
  o.output_dir = d.sub("gguf_spm");
  o.settings = {{"fingerprint", {{"model", "gguf+tokenizer.model"}}}};
  const DetectSummary s = run_detect(runner, o);
  EXPECT_EQ(s.counted, hf().summary.counted);
  std::istringstream in(read_text_file(d.sub("gguf_spm") + "/results.jsonl"));
  std::string line;
  int compared = 0;
  while (std::getline(in, line)) {
    const TestResult r = test_result_from_json(json::parse(line), "gguf_spm");
    const TestResult& h = hf().results.at(r.test_id);
    EXPECT_EQ(r.span_begin, h.span_begin) << r.test_id;
    EXPECT_EQ(r.answer, h.answer) << r.test_id;
    EXPECT_EQ(r.counted, h.counted) << r.test_id;
    ASSERT_EQ(r.head_scores.size(), h.head_scores.size()) << r.test_id;
    for (const auto& [key, v] : r.head_scores) EXPECT_NEAR(v, h.head_scores.at(key), 1e-12) << r.test_id << " " << key;
    ++compared;
  }
  EXPECT_EQ(compared, 45);
}

TEST_F(NiahTinyDetect, PrefixReuseOnAndOffGiveIdenticalResults) {
  TempDir d;
  const DetectRun off =
      detect(rhead::testing::shared_path(kTiny + "niah-tiny-f32.gguf"), niah_tiny_config(false), d.sub("off"));
  ASSERT_EQ(off.results.size(), gguf().results.size());
  int64_t reused = 0;
  for (const auto& [id, r] : gguf().results) {
    const TestResult& o = off.results.at(id);
    EXPECT_EQ(r.answer, o.answer) << id;
    EXPECT_EQ(r.counted, o.counted) << id;
    EXPECT_EQ(r.span_begin, o.span_begin) << id;
    EXPECT_EQ(r.head_scores, o.head_scores) << id;
    EXPECT_EQ(o.reused_tokens, 0) << id;
    reused += r.reused_tokens;
  }
  EXPECT_GT(reused, 0);
  EXPECT_EQ(off.head_score, gguf().head_score);
}

// stories260K barely retrieves; the run must still complete with a well-formed output.
TEST(Stories260KDetect, RunsCleanlyWithItsTokenizer) {
  const std::string gguf = rhead::testing::shared_path("models/stories260K/stories260K.gguf");
  RHEAD_REQUIRE_FILE(gguf);
  RHEAD_REQUIRE_FILE(rhead::testing::shared_path(kTiny + "needles.jsonl"));
  RHEAD_REQUIRE_FILE(rhead::testing::shared_path(kEssays));
  TempDir d;
  NiahRunConfig c;
  c.needle_sets = read_needle_sets(rhead::testing::shared_path(kTiny + "needles.jsonl"));
  c.default_haystack_dir = rhead::testing::shared_path(kEssays);
  c.grid.lengths = parse_lengths("300:500:2");
  c.grid.depths = depths_from_count(3);
  const DetectRun run = detect(gguf, c, d.sub("stories"));
  EXPECT_EQ(run.summary.tests, 18);
  // 5 layers x 8 query heads, ranked only when a test counted (it rarely does).
  EXPECT_EQ(run.summary.heads.size(), run.summary.counted > 0 ? 40u : 0u);
  ASSERT_EQ(run.head_score.size(), 40u);
  for (const auto& [key, list] : run.head_score.items()) {
    EXPECT_EQ(list.size(), static_cast<size_t>(run.summary.counted)) << key;
    for (const auto& v : list) EXPECT_TRUE(std::isfinite(v.get<double>()) && v.get<double>() >= 0) << key;
  }
  for (const auto& [id, r] : run.results) {
    EXPECT_GE(r.span_begin, 0) << id << ": needle span not found";
    EXPECT_GT(r.generated_tokens, 0) << id;
    EXPECT_GE(r.rouge_recall, 0.0) << id;
  }
}

}  // namespace

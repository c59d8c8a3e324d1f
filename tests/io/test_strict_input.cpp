// Strict reading of numbers and keys (io/json.h) and the identities of files that a run's
// fingerprint records (io/file_identity.h).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include "analysis/score_map.h"
#include "io/error.h"
#include "io/file_identity.h"
#include "io/json.h"
#include "io/json_range.h"
#include "records/results.h"
#include "records/task_records.h"
#include "test_support.h"

namespace rhead {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct TempDir : testing::MkdtempDir {
  TempDir() : MkdtempDir("rhead_test_strict_input_") {}
};

using testing::error_of;

TEST(StrictJson, ADuplicateKeyAtAnyDepthIsAnError) {
  EXPECT_NE(error_of([] { parse_json(R"({"a": 1, "a": 2})", "f.json"); }).find("f.json: duplicate key \"a\""),
            std::string::npos);
  EXPECT_NE(error_of([] {
              parse_json(R"({"x": [{"b": 1}, {"b": 2, "c": {"d": 1, "d": 1}}]})", "f.json");
            }).find("duplicate key \"d\""),
            std::string::npos);
  // The same key in sibling objects, or in an object and its child, is fine.
  EXPECT_EQ(parse_json(R"({"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}]})", "f.json")["b"][1]["a"], 2);
}

TEST(StrictJson, NumbersAreFiniteAndInTheirDomain) {
  // The parser refuses numbers beyond a double; a value built in code can still be infinite.
  EXPECT_NE(error_of([] { parse_json("[1e400]", "f.json"); }).find("f.json: invalid JSON"), std::string::npos);
  const json inf(std::numeric_limits<double>::infinity()), nan(std::numeric_limits<double>::quiet_NaN());
  EXPECT_NE(error_of([&] { json_number(inf, "f.json", "x"); }).find("x must be a finite number"), std::string::npos);
  EXPECT_NE(error_of([&] { json_number(nan, "f.json", "x"); }).find("finite"), std::string::npos);
  const json big = parse_json("[0, 0, 1e308, 0.5]", "f.json");
  EXPECT_EQ(json_number(big[2], "f.json", "x"), 1e308);
  EXPECT_NE(
      error_of([&] { json_number_in(big[2], "f.json", "score", 0, 1); }).find("score is 1e+308 (must be in [0, 1])"),
      std::string::npos);
  EXPECT_EQ(json_number_in(big[3], "f.json", "score", 0, 1), 0.5);
}

TEST(StrictJson, ResultLinesRefuseOutOfRangeValues) {
  const json detect = {{"test_id", "t"},      {"needle_id", 0},          {"length", 300},
                       {"depth", 0},          {"needle_span", {10, 20}}, {"answer", "x"},
                       {"rouge_recall", 100}, {"counted", true},         {"head_scores", {{"0-1", 0.5}}}};
  EXPECT_NO_THROW(test_result_from_json(detect, "r:1"));
  for (const auto& [field, value] :
       std::vector<std::pair<json::json_pointer, json>>{{json::json_pointer("/head_scores/0-1"), 1e308},
                                                        {json::json_pointer("/head_scores/0-1"), 1001},
                                                        {json::json_pointer("/head_scores/0-1"), -50},
                                                        {json::json_pointer("/rouge_recall"), 101},
                                                        {json::json_pointer("/sink_mass_top_heads"), 7.0}}) {
    json bad = detect;
    bad[field] = value;
    const std::string e = error_of([&] { test_result_from_json(bad, "r:1"); });
    EXPECT_NE(e.find("r:1: "), std::string::npos) << field << " " << value << ": " << e;
    EXPECT_NE(e.find("must be in"), std::string::npos) << field << " " << value << ": " << e;
  }
}

TEST(StrictJson, ScoreFilesHoldFiniteNonNegativeScores) {
  // A head that copies a needle token twice scores above 1 (the reference's files do).
  const json ok = {{"0-0", {0.0, 1.0}}, {"0-1", {0.25, 1.65}}};
  EXPECT_NO_THROW(analysis::score_map_from_reference_json(ok, "s.json"));
  for (double bad : {1e308, -5.0, 2000.0}) {
    json doc = ok;
    doc["0-1"] = {bad};
    const std::string e = error_of([&] { analysis::score_map_from_reference_json(doc, "s.json"); });
    EXPECT_NE(e.find("s.json: head \"0-1\" score"), std::string::npos) << bad << ": " << e;
  }
  // qrhead's calibrated scores go below 0: its file alone may hold them.
  json signed_doc = ok;
  signed_doc["0-1"] = {-5.0};
  EXPECT_NO_THROW(analysis::score_map_from_reference_json(signed_doc, "run/head_score.qrhead.json"));
  EXPECT_THROW(analysis::score_map_from_reference_json(signed_doc, "run/head_score.lookback.json"), Error);
}

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

TEST(FileIdentity, ChangesWithTheContentItCovers) {
  TempDir d;
  const std::string f = d.sub("data.jsonl");
  write(f, "{\"a\": 1}\n");
  const std::string first = content_digest(f);
  EXPECT_EQ(first.size(), 16u);
  EXPECT_EQ(content_digest(f), first);
  write(f, "{\"a\": 2}\n");
  EXPECT_NE(content_digest(f), first);
  // A folder: every file under it, by name and content.
  fs::create_directories(d.sub("hay/sub"));
  write(d.sub("hay/a.txt"), "alpha");
  write(d.sub("hay/sub/b.txt"), "beta");
  const std::string hay = content_digest(d.sub("hay"));
  write(d.sub("hay/sub/b.txt"), "betb");
  EXPECT_NE(content_digest(d.sub("hay")), hay);
  write(d.sub("hay/sub/b.txt"), "beta");
  EXPECT_EQ(content_digest(d.sub("hay")), hay);
  fs::rename(d.sub("hay/sub/b.txt"), d.sub("hay/sub/c.txt"));
  EXPECT_NE(content_digest(d.sub("hay")), hay);
  EXPECT_NE(error_of([&] { content_digest(d.sub("missing")); }).find("missing"), std::string::npos);
}

TEST(FileIdentity, AModelIsKnownBySizeHeaderAndTail) {
  TempDir d;
  const std::string m = d.sub("model.gguf");
  std::string bytes(20u << 20, 'w');  // 20 MiB: head 16 MiB, tail 1 MiB, 3 MiB unread between
  write(m, bytes);
  const std::string id = model_identity(m);
  EXPECT_EQ(id.substr(0, id.find(':')), std::to_string(bytes.size()));
  bytes[100] = 'x';  // the header
  write(m, bytes);
  const std::string header = model_identity(m);
  EXPECT_NE(header, id);
  bytes[bytes.size() - 10] = 'x';  // the last tensor
  write(m, bytes);
  EXPECT_NE(model_identity(m), header);
  bytes.push_back('w');  // another size
  write(m, bytes);
  EXPECT_NE(model_identity(m).substr(0, id.find(':')), id.substr(0, id.find(':')));
}

}  // namespace
}  // namespace rhead

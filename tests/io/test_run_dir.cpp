// RunDir (io/run_dir.h): kind and fingerprint checks, shards, append and resume with a torn
// tail, and merging shard directories.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <functional>

#include "io/error.h"
#include "io/run_dir.h"
#include "test_support.h"

namespace rhead {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct TempDir : testing::MkdtempDir {
  TempDir() : MkdtempDir("rhead_test_run_dir_") {}
};

json record(const std::string& model) { return {{"settings", {{"fingerprint", {{"model", model}}}, {"shard", "0/1"}}}}; }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(RunDir, AppendsResumesAndListsPendingKeysOfAShard) {
  TempDir d;
  const std::vector<std::string> keys = {"a", "b", "c", "d", "e"};
  {
    RunDir dir = RunDir::open(d.sub("run"), "qa", record("m"));
    EXPECT_EQ(dir.pending(keys, {0, 1}), (std::vector<size_t>{0, 1, 2, 3, 4}));
    EXPECT_EQ(dir.pending(keys, {1, 2}), (std::vector<size_t>{1, 3}));
    dir.append({{"test_id", "b"}, {"value", 1}});
    dir.append({{"test_id", "a"}, {"value", 2}});
    EXPECT_NE(error_of([&] { dir.append({{"test_id", "a"}, {"value", 3}}); }).find("'a'"), std::string::npos);
    EXPECT_THROW(dir.append({{"value", 3}}), Error);  // no key
  }
  // A kill in the middle of a write leaves a torn last line: reopening cuts it off.
  std::ofstream(d.sub("run") + "/results.jsonl", std::ios::app) << R"({"test_id": "c", "val)";
  RunDir dir = RunDir::open(d.sub("run"), "qa", record("m"));
  ASSERT_EQ(dir.lines().size(), 2u);
  EXPECT_EQ(dir.lines()[1].at("value"), 2);
  EXPECT_EQ(dir.pending(keys, {0, 1}), (std::vector<size_t>{2, 3, 4}));
  EXPECT_EQ(dir.pending(keys, {0, 2}), (std::vector<size_t>{2, 4}));
  dir.append({{"test_id", "c"}, {"value", 4}});
  EXPECT_EQ(testing::read_text_file(d.sub("run") + "/results.jsonl"),
            "{\"test_id\":\"b\",\"value\":1}\n{\"test_id\":\"a\",\"value\":2}\n{\"test_id\":\"c\",\"value\":4}\n");
  EXPECT_EQ(json::parse(testing::read_text_file(d.sub("run") + "/run.json")).at("kind"), "qa");
  EXPECT_THROW(dir.pending(keys, {2, 2}), Error);
}

TEST(RunDir, RefusesADirectoryOfAnotherKindOrFingerprint) {
  TempDir d;
  RunDir::open(d.sub("run"), "qa", record("m"));
  const std::string kind = error_of([&] { RunDir::open(d.sub("run"), "cot", record("m")); });
  EXPECT_NE(kind.find(d.sub("run") + "/run.json"), std::string::npos) << kind;
  EXPECT_NE(kind.find("holds a qa run"), std::string::npos) << kind;
  const std::string other = error_of([&] { RunDir::open(d.sub("run"), "qa", record("other")); });
  EXPECT_NE(other.find("other settings"), std::string::npos) << other;
  EXPECT_EQ(other.find('\n'), std::string::npos);
  // The shard is not part of the fingerprint.
  json r = record("m");
  r["settings"]["shard"] = "1/2";
  EXPECT_NO_THROW(RunDir::open(d.sub("run"), "qa", r));
}

TEST(RunDir, MergesShardsByKeyAndRefusesConflicts) {
  TempDir d;
  json r0 = record("m"), r1 = record("m");
  r1["settings"]["shard"] = "1/2";
  {
    RunDir s0 = RunDir::open(d.sub("s0"), "niah", r0);
    s0.append({{"test_id", "a"}, {"score", 1}, {"seconds", 0.5}});
    s0.append({{"test_id", "c"}, {"score", 3}});
    RunDir s1 = RunDir::open(d.sub("s1"), "niah", r1);
    s1.append({{"test_id", "b"}, {"score", 2}});
    s1.append({{"test_id", "a"}, {"score", 1}, {"seconds", 0.7}});  // same result, other timing
  }
  const RunDir m = merge_run_dirs({d.sub("s0"), d.sub("s1"), d.sub("s0")}, d.sub("m"));
  EXPECT_EQ(m.kind(), "niah");
  ASSERT_EQ(m.lines().size(), 3u);
  EXPECT_EQ(m.lines()[2].at("test_id"), "b");
  EXPECT_FALSE(m.record().at("settings").contains("shard"));
  {
    RunDir s2 = RunDir::open(d.sub("s2"), "niah", r0);
    s2.append({{"test_id", "b"}, {"score", 5}});
    RunDir q = RunDir::open(d.sub("q"), "qa", r0);
    RunDir other = RunDir::open(d.sub("other"), "niah", record("x"));
  }
  const std::string conflict = error_of([&] { merge_run_dirs({d.sub("s1"), d.sub("s2")}, d.sub("m2")); });
  EXPECT_NE(conflict.find("key 'b' differs"), std::string::npos) << conflict;
  EXPECT_NE(error_of([&] { merge_run_dirs({d.sub("s0"), d.sub("q")}, d.sub("m2")); }).find("different kinds"),
            std::string::npos);
  EXPECT_NE(error_of([&] { merge_run_dirs({d.sub("s0"), d.sub("other")}, d.sub("m2")); }).find("settings differ"),
            std::string::npos);
  EXPECT_NE(error_of([&] { merge_run_dirs({d.sub("none")}, d.sub("m2")); }).find("no run.json"), std::string::npos);
  EXPECT_THROW(merge_run_dirs({}, d.sub("m2")), Error);
}

}  // namespace
}  // namespace rhead

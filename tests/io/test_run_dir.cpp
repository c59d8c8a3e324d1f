// RunDir (io/run_dir.h): kind and fingerprint checks, shards, append and resume with a torn
// tail, and merging shard directories.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

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

json record(const std::string& model) {
  return {{"settings", {{"fingerprint", {{"model", model}}}, {"shard", "0/1"}}}};
}

using testing::error_of;

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
  EXPECT_NE(error_of([&] {
              merge_run_dirs({d.sub("s0"), d.sub("q")}, d.sub("m2"));
            }).find("different kinds"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              merge_run_dirs({d.sub("s0"), d.sub("other")}, d.sub("m2"));
            }).find("settings differ"),
            std::string::npos);
  EXPECT_NE(error_of([&] { merge_run_dirs({d.sub("none")}, d.sub("m2")); }).find("no run.json"), std::string::npos);
  EXPECT_THROW(merge_run_dirs({}, d.sub("m2")), Error);
}

using rhead::testing::file_snapshot;

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

TEST(ResultsLines, AreReadStrictlyNamingTheLine) {
  TempDir d;
  const std::string path = d.sub("results.jsonl");
  const std::string good = "{\"test_id\":\"a\",\"score\":1}\n";
  struct Case {
    std::string second_line, expect;
  };
  const Case cases[] = {
      {"{\"test_id\":\"b\",\"score\":1,\"score\":2}\n", "duplicate key \"score\""},
      {"{\"test_id\":\"b\",\"test_id\":\"c\"}\n", "duplicate key \"test_id\""},
      {"{\"score\":2}\n", "missing field 'test_id'"},
      {"{\"test_id\":\"\"}\n", "field 'test_id' is empty"},
      {"{\"test_id\":7}\n", "field 'test_id' must be a string"},
      {"{\"test_id\":\"a\",\"score\":1}\n", "key 'a' is on line 1 already"},
      {"{\"test_id\":\"a\",\"score\":2}\n", "key 'a' is on line 1 already"},
  };
  for (const Case& c : cases) {
    write_text(path, good + c.second_line);
    const std::string e = error_of([&] { read_results_lines(path, true); });
    EXPECT_NE(e.find(path + ":2: "), std::string::npos) << c.second_line << " -> " << e;
    EXPECT_NE(e.find(c.expect), std::string::npos) << c.second_line << " -> " << e;
    EXPECT_EQ(testing::read_text_file(path), good + c.second_line);  // nothing cut or rewritten
  }
}

json grid_record_of(const std::string& model) {
  json r = record(model);
  r["n_layer"] = 2;
  r["n_head"] = 4;
  return r;
}

TEST(RunDir, WritesNothingBeforeEveryCheckPassed) {
  TempDir d;
  const std::string run = d.sub("run");
  RunChecks checks;
  checks.keys = {"a", "b", "c"};
  {
    RunDir dir = RunDir::open(run, "niah", grid_record_of("m"), checks);
    dir.append({{"test_id", "a"}, {"score", 1}});
  }
  // A torn tail that a successful open would cut.
  std::ofstream(run + "/results.jsonl", std::ios::app) << R"({"test_id": "b", "sc)";
  const auto before = file_snapshot(run);
  auto expect_refused = [&](const std::function<void()>& open, const std::string& mentions) {
    const std::string e = error_of(open);
    EXPECT_NE(e.find(mentions), std::string::npos) << "expected '" << mentions << "' in: " << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
    EXPECT_EQ(file_snapshot(run), before) << mentions;
  };
  // Another kind, another fingerprint, another head grid, another grid of keys.
  expect_refused([&] { RunDir::open(run, "qa", grid_record_of("m"), checks); }, "holds a niah run, not a qa run");
  expect_refused([&] { RunDir::open(run, "niah", grid_record_of("other"), checks); }, "settings 'model'");
  json heads = grid_record_of("m");
  heads["n_head"] = 8;
  expect_refused([&] { RunDir::open(run, "niah", heads, checks); }, "another head grid");
  RunChecks grown = checks;
  grown.keys.push_back("d");
  expect_refused([&] { RunDir::open(run, "niah", grid_record_of("m"), grown); }, "grid of keys (3 keys, now 4");
  // A line the kind's reader refuses.
  RunChecks strict = checks;
  strict.check_lines = [](const RunDir& dir) { fail(dir.file("results.jsonl") + ":1", "score out of range"); };
  expect_refused([&] { RunDir::open(run, "niah", grid_record_of("m"), strict); },
                 "results.jsonl:1: score out of range");
  // A line whose key is not one of the run's.
  write_text(run + "/results.jsonl", "{\"test_id\":\"a\",\"score\":1}\n{\"test_id\":\"zz\",\"score\":1}\n");
  const auto foreign = file_snapshot(run);
  const std::string e = error_of([&] { RunDir::open(run, "niah", grid_record_of("m"), checks); });
  EXPECT_NE(e.find("key 'zz' is not a key of this run"), std::string::npos) << e;
  EXPECT_EQ(file_snapshot(run), foreign);
}

TEST(RunDir, AnOlderDetectDirectoryIsNotRewrittenByAnotherKind) {
  TempDir d;
  const std::string run = d.sub("old");
  fs::create_directories(run);
  // The older layout: run.json without "kind" (a detect run).
  write_text(run + "/run.json", record("m").dump(2) + "\n");
  write_text(run + "/results.jsonl", "{\"test_id\":\"t1\"}\n");
  const auto before = file_snapshot(run);
  const std::string e = error_of([&] { RunDir::open(run, "niah", record("m")); });
  EXPECT_NE(e.find("holds a detect run, not a niah run"), std::string::npos) << e;
  EXPECT_EQ(file_snapshot(run), before);
  EXPECT_EQ(RunDir::read(run).kind(), "detect");
  // A directory with results but no run.json is no run's.
  fs::remove(run + "/run.json");
  EXPECT_NE(error_of([&] { RunDir::open(run, "niah", record("m")); }).find("results but no run.json"),
            std::string::npos);
}

TEST(MergeRunDirs, WritesOnlyIntoANewDirectoryOrOneOfTheSameRun) {
  TempDir d;
  RunChecks checks;
  checks.keys = {"a", "b", "c", "d"};
  json r1 = grid_record_of("m");
  r1["settings"]["shard"] = "1/2";
  {
    RunDir s0 = RunDir::open(d.sub("s0"), "niah", grid_record_of("m"), checks);
    s0.append({{"test_id", "a"}, {"score", 1}});
    s0.append({{"test_id", "c"}, {"score", 3}});
    RunDir s1 = RunDir::open(d.sub("s1"), "niah", r1, checks);
    s1.append({{"test_id", "b"}, {"score", 2}, {"reused_tokens", 7}});
    RunDir qa = RunDir::open(d.sub("qa"), "qa", grid_record_of("m"));
    qa.append({{"test_id", "q1"}, {"f1", 1}});
    qa.write_file("summary.json", "{}\n");
    RunDir other = RunDir::open(d.sub("other"), "niah", grid_record_of("x"), checks);
    other.append({{"test_id", "a"}, {"score", 0}});
  }
  // Into a directory of another kind or another run: refused, untouched.
  for (const std::string& target : std::vector<std::string>{d.sub("qa"), d.sub("other")}) {
    const auto before = file_snapshot(target);
    const std::string e = error_of([&] { merge_run_dirs({d.sub("s0"), d.sub("s1")}, target); });
    EXPECT_NE(e.find("merge writes only into a new directory or one of the same run"), std::string::npos) << e;
    EXPECT_EQ(file_snapshot(target), before);
  }
  // A set of shards missing a key: merged, and marked partial.
  const RunDir m = merge_run_dirs({d.sub("s0"), d.sub("s1")}, d.sub("m"));
  EXPECT_EQ(m.lines().size(), 3u);
  EXPECT_EQ(m.record().at("partial"), (json{{"missing_keys", 1}, {"keys", 4}}));
  // Merging into a directory of the same run keeps its lines: a later shard joins them.
  {
    RunDir s1 = RunDir::open(d.sub("s1"), "niah", r1, checks);
    s1.append({{"test_id", "d"}, {"score", 4}});
  }
  const RunDir again = merge_run_dirs({d.sub("s1")}, d.sub("m"));
  EXPECT_EQ(again.lines().size(), 4u);
  EXPECT_FALSE(again.record().contains("partial"));
  // A line that differs only in reused_tokens is the same result.
  {
    RunDir s2 = RunDir::open(d.sub("s2"), "niah", grid_record_of("m"), checks);
    s2.append({{"test_id", "b"}, {"score", 2}, {"reused_tokens", 0}});
  }
  EXPECT_EQ(merge_run_dirs({d.sub("s1"), d.sub("s2")}, d.sub("m3")).lines().size(), 2u);
}

TEST(RunDir, AGridGrowsOnlyWhenAskedAndNeverShrinks) {
  TempDir d;
  const std::string run = d.sub("run");
  RunChecks small;
  small.keys = {"a", "b"};
  {
    RunDir dir = RunDir::open(run, "detect", grid_record_of("m"), small);
    dir.append({{"test_id", "a"}});
    dir.append({{"test_id", "b"}});
  }
  RunChecks grown = small;
  grown.keys.push_back("c");
  EXPECT_NE(error_of([&] { RunDir::open(run, "detect", grid_record_of("m"), grown); }).find("another grid of keys"),
            std::string::npos);
  grown.grow_grid = true;
  {
    RunDir dir = RunDir::open(run, "detect", grid_record_of("m"), grown);
    EXPECT_EQ(dir.pending(grown.keys, {0, 1}), (std::vector<size_t>{2}));
    EXPECT_EQ(dir.record().at("grid").at("keys"), 3);
  }
  // Another setting is still refused, and a grid that lost a key of the lines too.
  EXPECT_NE(error_of([&] { RunDir::open(run, "detect", grid_record_of("x"), grown); }).find("other settings 'model'"),
            std::string::npos);
  RunChecks shrunk;
  shrunk.keys = {"a", "c"};
  shrunk.grow_grid = true;
  EXPECT_NE(error_of([&] { RunDir::open(run, "detect", grid_record_of("m"), shrunk); }).find("key 'b' is not a key"),
            std::string::npos);
}

}  // namespace
}  // namespace rhead

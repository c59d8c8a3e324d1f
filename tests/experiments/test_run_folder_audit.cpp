// The run-folder classes of hostile input, through the rhead binary as a user meets them:
// each is refused with one error line naming the file or option and the problem, and every
// file of the folders involved is left as it was.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "test_support.h"

namespace {

using nlohmann::json;
namespace fs = std::filesystem;
using rhead::testing::CliResult;
using rhead::testing::read_text_file;
using rhead::testing::run_rhead;

struct TempDir : rhead::testing::MkdtempDir {
  TempDir() : MkdtempDir("rhead_test_run_folder_audit_") {}
};

using rhead::testing::file_snapshot;

std::vector<std::string> niah(const std::string& out, std::vector<std::string> extra = {},
                              const std::string& lengths = "300:400:2") {
  std::vector<std::string> args = {"niah", "-m", "builtin:induction", "--lengths", lengths, "--depths", "2", "-q",
                                   "-o",   out};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

void expect_one_line_error(const CliResult& r, const std::string& mentions) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(mentions), std::string::npos) << "expected '" << mentions << "' in: " << r.err;
  EXPECT_LT(r.err.size(), 400u) << r.err;
}

TEST(RunFolderAudit, AFolderOfAnotherRunIsRefusedAndLeftAsItWas) {
  TempDir d;
  const std::string run = d.sub("niah"), det = d.sub("detect");
  ASSERT_EQ(run_rhead(niah(run), d.path).exit_code, 0);
  const CliResult dr = run_rhead(
      {"detect", "-m", "builtin:induction", "--lengths", "300:400:2", "--depths", "2", "-q", "-o", det}, d.path);
  ASSERT_EQ(dr.exit_code, 0) << dr.err;
  const auto niah_files = file_snapshot(run), detect_files = file_snapshot(det);

  // merge into a folder of another kind, or of another run of the same kind.
  expect_one_line_error(run_rhead({"merge", run, "-o", det}, d.path), "holds a detect run, not a niah run");
  EXPECT_EQ(file_snapshot(det), detect_files);
  const std::string other = d.sub("other");
  ASSERT_EQ(run_rhead(niah(other, {"--buffer", "150"}), d.path).exit_code, 0);
  const auto other_files = file_snapshot(other);
  expect_one_line_error(run_rhead({"merge", run, "-o", other}, d.path), "settings 'buffer'");
  EXPECT_EQ(file_snapshot(other), other_files);

  // Resume with an option that changes results, or with another grid.
  expect_one_line_error(run_rhead(niah(run, {"--kv-type", "f32"}), d.path), "settings 'kv_type'");
  expect_one_line_error(run_rhead(niah(run, {}, "300:500:3"), d.path), "grid of keys (");
  EXPECT_EQ(file_snapshot(run), niah_files);

  // An older detect folder (run.json without "kind") is not rewritten as a niah run.
  json record = json::parse(read_text_file(det + "/run.json"));
  record.erase("kind");
  std::ofstream(det + "/run.json") << record.dump(2) << "\n";
  const auto older = file_snapshot(det);
  expect_one_line_error(run_rhead(niah(det), d.path), "holds a detect run, not a niah run");
  EXPECT_EQ(file_snapshot(det), older);
}

TEST(RunFolderAudit, HandEditedLinesAreRefusedNamingTheLine) {
  TempDir d;
  const std::string run = d.sub("run");
  ASSERT_EQ(run_rhead(niah(run), d.path).exit_code, 0);
  const std::string results = run + "/results.jsonl";
  const std::string text = read_text_file(results);
  const std::string first = text.substr(0, text.find('\n'));
  const std::string rest = text.substr(text.find('\n') + 1);
  const json line = json::parse(first);
  struct Case {
    std::string first_line, expect;
  };
  json no_key = line, foreign = line, high = line;
  no_key.erase("test_id");
  foreign["test_id"] = "none|no-such-test";
  high["score"] = 1e308;
  const Case cases[] = {
      {first.substr(0, first.size() - 1) + ",\"score\":0}", "duplicate key \"score\""},
      {no_key.dump(), "missing field 'test_id'"},
      {foreign.dump(), "key 'none|no-such-test' is not a key of this run"},
      {high.dump(), "field 'score' is 1e+308 (must be in [0, 100])"},
  };
  for (const Case& c : cases) {
    std::ofstream(results, std::ios::binary) << c.first_line << "\n" << rest;
    const auto before = file_snapshot(run);
    const CliResult r = run_rhead(niah(run), d.path);
    expect_one_line_error(r, c.expect);
    EXPECT_NE(r.err.find(c.expect.rfind("key '", 0) == 0 ? results : results + ":1"), std::string::npos) << r.err;
    EXPECT_EQ(file_snapshot(run), before) << c.expect;
  }
  // A key on two lines, the second conflicting.
  std::ofstream(results, std::ios::binary) << text << first << "\n";
  expect_one_line_error(run_rhead(niah(run), d.path), "is on line 1 already");
}

TEST(RunFolderAudit, ListAndRangeOptionsAreCheckedBeforeAnythingRuns) {
  TempDir d;
  const std::string run = d.sub("run");
  expect_one_line_error(run_rhead(niah(run, {"--mask", "random:2", "--seed", "0,1,0"}), d.path),
                        "--seed: '0' is given twice");
  EXPECT_FALSE(fs::exists(run));
  const CliResult zero = run_rhead(niah(run, {"--depths", "0"}), d.path);
  EXPECT_NE(zero.exit_code, 0);
  EXPECT_NE(zero.err.find("--depths"), std::string::npos) << zero.err;
  EXPECT_NE(zero.err.find("must be at least 1"), std::string::npos) << zero.err;
  EXPECT_LT(zero.err.size(), 200u) << zero.err;
  EXPECT_FALSE(fs::exists(run));
}

TEST(RunFolderAudit, AMergeOfSomeShardsSaysHowManyKeysAreMissing) {
  TempDir d;
  const CliResult s = run_rhead(niah(d.sub("s0"), {"--shard", "0/2"}), d.path);
  ASSERT_EQ(s.exit_code, 0) << s.err;
  const CliResult m = run_rhead({"merge", d.sub("s0"), "-o", d.sub("m")}, d.path);
  ASSERT_EQ(m.exit_code, 0) << m.err;
  const json run = json::parse(read_text_file(d.sub("m") + "/run.json"));
  const int64_t total = run.at("grid").at("keys").get<int64_t>();
  const int64_t missing = run.at("partial").at("missing_keys").get<int64_t>();
  EXPECT_EQ(missing, total - static_cast<int64_t>(rhead::testing::count_lines(d.sub("m") + "/results.jsonl")));
  EXPECT_GT(missing, 0);
  EXPECT_NE(m.err.find(std::to_string(missing) + " of " + std::to_string(total) + " keys are missing"),
            std::string::npos)
      << m.err;
  EXPECT_EQ(json::parse(read_text_file(d.sub("m") + "/summary.json")).at("partial").at("missing_keys"), missing);
  // The other shard completes it.
  ASSERT_EQ(run_rhead(niah(d.sub("s1"), {"--shard", "1/2"}), d.path).exit_code, 0);
  const CliResult all = run_rhead({"merge", d.sub("s1"), "-o", d.sub("m")}, d.path);
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_FALSE(json::parse(read_text_file(d.sub("m") + "/run.json")).contains("partial"));
  EXPECT_EQ(rhead::testing::count_lines(d.sub("m") + "/results.jsonl"), static_cast<size_t>(total));
}

TEST(RunFolderAudit, AChangedDataFileIsAnotherRun) {
  const std::string tiny = rhead::testing::shared_path("models/niah-tiny/niah-tiny-f32.gguf");
  RHEAD_REQUIRE_FILE(tiny);
  TempDir d;
  const std::string data = d.sub("qa.jsonl");
  std::ofstream(data)
      << R"({"id": "q1", "context": "The code is star oil nest.", "question": "What is the code?", "answers": ["star oil nest"]})"
      << "\n";
  const std::vector<std::string> qa = {"qa", "-m", tiny, "--data",   data, "--max-new-tokens",
                                       "4",  "-q", "-o", d.sub("qa")};
  const CliResult first = run_rhead(qa, d.path);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const auto before = file_snapshot(d.sub("qa"));
  std::ofstream(data)
      << R"({"id": "q1", "context": "The code is blue fox.", "question": "What is the code?", "answers": ["blue fox"]})"
      << "\n";
  expect_one_line_error(run_rhead(qa, d.path), "settings 'data'");
  EXPECT_EQ(file_snapshot(d.sub("qa")), before);
}

}  // namespace

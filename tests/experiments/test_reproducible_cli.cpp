// The same key gives the same line whatever ran before it: an uninterrupted niah run on
// niah-tiny (with prefix reuse over small prefill chunks, and the attention-sink mass of the
// top heads recorded), the same run with --threads 1, a run killed with SIGKILL and resumed,
// and two shards merged all write byte-identical lines apart from their timing fields.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.h"

namespace {

using nlohmann::json;
using rhead::testing::CliResult;
using rhead::testing::read_text_file;
using rhead::testing::run_rhead;
using rhead::testing::shared_path;

struct TempDir : rhead::testing::MkdtempDir {
  TempDir() : MkdtempDir("rhead_test_reproducible_") {}
};

const std::string kTiny = "models/niah-tiny/";

std::vector<std::string> common(const std::string& command, const std::string& out) {
  return {command,
          "-m",
          shared_path(kTiny + "niah-tiny-f32.gguf"),
          "--needles",
          shared_path(kTiny + "needles.jsonl"),
          "--haystack",
          shared_path("data/haystack/paul_graham_essays"),
          "--prompt-template",
          "{context}\nQuestion: {question}\nAnswer:",
          "-q",
          "-o",
          out};
}

// Lines by key, apart from their timing fields (results_without_timing); json equality of
// numbers is bit equality of the doubles the lines were written from.
std::map<std::string, json> lines_of(const std::string& dir) { return rhead::testing::results_without_timing(dir); }

// Runs `args(out, extra)` uninterrupted (threads 2), with --threads 1, killed after 3 lines
// and resumed, and as two shards merged; every variant must write the reference's lines.
// Returns the reference's lines as written.
std::vector<json> expect_reproducible(
    const TempDir& d, const std::string& name,
    const std::function<std::vector<std::string>(const std::string&, std::vector<std::string>)>& args) {
  const std::string ref = d.sub(name + "_ref");
  const CliResult r = run_rhead(args(ref, {"--threads", "2"}), d.path);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto want = lines_of(ref);
  EXPECT_GE(want.size(), 12u);

  const CliResult one = run_rhead(args(d.sub(name + "_threads1"), {"--threads", "1"}), d.path);
  EXPECT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(lines_of(d.sub(name + "_threads1")), want) << name << ": --threads 1 vs 2";

  const std::string killed = d.sub(name + "_killed");
  EXPECT_TRUE(rhead::testing::run_rhead_and_kill(args(killed, {"--threads", "2"}), killed + "/results.jsonl", 3))
      << "the run ended before the kill";
  const CliResult resumed = run_rhead(args(killed, {"--threads", "2"}), d.path);
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(lines_of(killed), want) << name << ": killed and resumed";

  for (const char* shard : {"0/2", "1/2"}) {
    const CliResult s = run_rhead(args(d.sub(name + "_shard" + shard[0]), {"--shard", shard}), d.path);
    EXPECT_EQ(s.exit_code, 0) << s.err;
  }
  const std::string merged = d.sub(name + "_merged");
  const CliResult m = run_rhead({"merge", d.sub(name + "_shard0"), d.sub(name + "_shard1"), "-o", merged}, d.path);
  EXPECT_EQ(m.exit_code, 0) << m.err;
  EXPECT_EQ(lines_of(merged), want) << name << ": two shards merged";
  // merge compares lines exactly: the resumed run, the uninterrupted one and the one-thread
  // one merge into one.
  const CliResult all =
      run_rhead({"merge", ref, killed, d.sub(name + "_threads1"), "-o", d.sub(name + "_all")}, d.path);
  EXPECT_EQ(all.exit_code, 0) << all.err;

  std::vector<json> lines;
  std::istringstream in(read_text_file(ref + "/results.jsonl"));
  std::string line;
  while (std::getline(in, line)) lines.push_back(json::parse(line));
  return lines;
}

TEST(Reproducible, ResumeShardsAndThreadCountGiveIdenticalLines) {
  RHEAD_REQUIRE_FILE(shared_path(kTiny + "niah-tiny-f32.gguf"));
  RHEAD_REQUIRE_FILE(shared_path(kTiny + "needles.jsonl"));
  RHEAD_REQUIRE_FILE(shared_path("data/haystack/paul_graham_essays"));
  TempDir d;
  // Prompts of 300..500 tokens in prefill chunks of 64: prefix reuse and chunk boundaries
  // fall at many places, and the cache a test starts from depends on the test before it.
  auto grid = [](std::vector<std::string> args, const std::vector<std::string>& extra) {
    for (const char* a : {"--lengths", "300:500:3", "--depths", "4", "--chunk", "64", "--max-new-tokens", "24"})
      args.push_back(a);
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  // detect: its lines say how many prompt tokens came from the cache.
  const std::vector<json> detect = expect_reproducible(
      d, "detect",
      [&](const std::string& out, std::vector<std::string> extra) { return grid(common("detect", out), extra); });
  int64_t reused = 0;
  for (const json& l : detect) reused += l.value("reused_tokens", int64_t{0});
  EXPECT_GT(reused, 0) << "no prefix was reused: the check would miss the reuse path";

  // niah with the detect run's scores: the sink mass of the top heads, over a masked and an
  // unmasked decode of each prefilled prompt.
  const std::string scores = d.sub("detect_ref");
  const std::vector<json> niah =
      expect_reproducible(d, "niah", [&](const std::string& out, std::vector<std::string> extra) {
        std::vector<std::string> args = grid(common("niah", out), extra);
        for (const std::string& a :
             {std::string("--scores"), scores, std::string("--mask"), std::string("top:3"), std::string("--baseline")})
          args.push_back(a);
        return args;
      });
  bool sink = false;
  for (const json& l : niah) sink |= l.contains("sink_mass_top_heads");
  EXPECT_TRUE(sink) << "no sink mass recorded: the check would miss the summation it is about";
}

}  // namespace

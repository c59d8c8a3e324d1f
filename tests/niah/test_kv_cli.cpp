// `rhead kv-plan` end to end on builtin:induction (2 layers x 4 query heads, 2 KV heads,
// head_dim 112): the plan file, its predicted memory, and one-line errors on bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "test_support.h"

namespace {

using nlohmann::json;
using rhead::testing::MkdtempDir;

struct CliRun {
  int exit_code;
  std::string out, err;
};

CliRun rhead_cli(const std::string& args, const MkdtempDir& d) {
  const std::string err = d.sub("stderr.txt");
  const auto r = rhead::testing::run_command(rhead::testing::shell_quote(rhead::testing::rhead_binary()) + " " + args +
                                             " 2>" + rhead::testing::shell_quote(err));
  return {r.exit_code, r.output, rhead::testing::read_text_file(err)};
}

// The induction heads 1-1 (KV head 0) and 1-2 (KV head 1) score; every other head 0.
std::string write_scores(const MkdtempDir& d) {
  json s = json::object();
  for (int l = 0; l < 2; ++l)
    for (int h = 0; h < 4; ++h) s[std::to_string(l) + "-" + std::to_string(h)] = json::array({0.0});
  s["1-1"] = {1.0};
  s["1-2"] = {0.8};
  const std::string path = d.sub("head_score.json");
  std::ofstream(path) << s.dump();
  return path;
}

TEST(KvPlanCli, WritesThePlanUnderTheBudget) {
  MkdtempDir d("kvplancli");
  const std::string scores = write_scores(d);
  // Length 1000, window 64, sink 4: a windowed KV head keeps 68 rows. 4 KV heads, 4000 rows full.
  // One whole KV head: (1000 + 3 * 68) / 4000 = 30.1%; two: 53.4%. Budget 50% keeps one.
  CliRun r = rhead_cli(
      "kv-plan -m builtin:induction --scores " + scores + " --budget 50% --length 1000 -o " + d.sub("plan.json"), d);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json plan = json::parse(rhead::testing::read_text_file(d.sub("plan.json")));
  EXPECT_EQ(plan["format"], "rhead-head-policy");
  ASSERT_EQ(plan["full_kv_heads"].size(), 1u);
  EXPECT_EQ(plan["full_kv_heads"][0]["layer"], 1);
  EXPECT_EQ(plan["full_kv_heads"][0]["kv_head"], 0);
  EXPECT_EQ(plan["full_query_heads"], json({"1-0", "1-1"}));
  EXPECT_EQ(plan["predicted"]["kv_bytes_kept"], 1204 * 2 * 112 * 2);
  EXPECT_EQ(plan["predicted"]["kv_bytes_full"], 4000 * 2 * 112 * 2);
  // The CPU's compacted cache: the whole KV head 1000 rows, each ring 4 + 64 + 256 (chunk).
  EXPECT_EQ(plan["predicted"]["kv_bytes_held"], (1000 + 3 * 324) * 2 * 112 * 2);
  EXPECT_EQ(plan["predicted"]["prefill_chunk"], 256);
  EXPECT_EQ(plan["window"], 64);
  EXPECT_EQ(plan["length"], 1000);
  // The printed explanation: what every head keeps, what a whole KV head adds, and the next
  // KV head's cost against the budget (one more would give 53.4% > 50%).
  EXPECT_NE(r.out.find("every head keeps 4 sink + 64 window positions of 1000 (6.8%)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("each KV head kept whole adds 23.3 points"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("next: KV head 1-1 (score 0.800) would cost 23.3 points, 53.4% in all, over the 50.0% budget"),
            std::string::npos)
      << r.out;

  r = rhead_cli(
      "kv-plan -m builtin:induction --scores " + scores + " --budget 0.6 --length 1000 -o " + d.sub("plan2.json"), d);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(rhead::testing::read_text_file(d.sub("plan2.json")))["full_kv_heads"].size(), 2u);
  EXPECT_NE(r.out.find("next: none; no other KV head scores above 0"), std::string::npos) << r.out;

  // The held rows follow the session's prefill chunk: rings of 4 + 64 + 16 with --chunk 16.
  r = rhead_cli("kv-plan -m builtin:induction --scores " + scores + " --budget 50% --length 1000 --chunk 16 -o " +
                    d.sub("plan3.json"),
                d);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json plan3 = json::parse(rhead::testing::read_text_file(d.sub("plan3.json")));
  EXPECT_EQ(plan3["predicted"]["kv_bytes_held"], (1000 + 3 * 84) * 2 * 112 * 2);
  EXPECT_EQ(plan3["predicted"]["prefill_chunk"], 16);
  EXPECT_EQ(plan3["predicted"]["kv_bytes_kept"], plan["predicted"]["kv_bytes_kept"]);
  EXPECT_NE(r.out.find("16-token prefill chunks"), std::string::npos) << r.out;
}

// --format duo writes DuoAttention's folder: one row per layer, one column per KV head, the
// plan's window and sink as recent_size and sink_size; with --duo-gates score the KV heads'
// scores and a threshold that selects the same heads. Both read back as the JSON plan's policy.
TEST(KvPlanCli, DuoFormatWritesTheSamePlan) {
  MkdtempDir d("kvplanduo");
  const std::string scores = write_scores(d);
  const std::string base = "kv-plan -m builtin:induction --scores " + scores + " --budget 50% --length 1000 ";
  ASSERT_EQ(rhead_cli(base + "-o " + d.sub("plan.json"), d).exit_code, 0);
  CliRun r = rhead_cli(base + "--format duo -o " + d.sub("duo"), d);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(rhead::testing::read_text_file(d.sub("duo/full_attention_heads.tsv")), "0\t0\n1\t0\n");
  json cfg = json::parse(rhead::testing::read_text_file(d.sub("duo/config.json")));
  EXPECT_EQ(cfg["sink_size"], 4);
  EXPECT_EQ(cfg["recent_size"], 64);
  EXPECT_FALSE(cfg.contains("threshold"));
  r = rhead_cli(base + "--format duo --duo-gates score -o " + d.sub("duo_score"), d);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // KV head 1-0 scores 1.0 (query head 1-1), 1-1 scores 0.8 (1-2); the plan keeps only 1-0.
  EXPECT_EQ(rhead::testing::read_text_file(d.sub("duo_score/full_attention_heads.tsv")),
            "0\t0\n1\t0.80000000000000004\n");
  cfg = json::parse(rhead::testing::read_text_file(d.sub("duo_score/config.json")));
  EXPECT_EQ(cfg["threshold"], 1.0);
  // Each plan runs under --kv-policy-file with the same policy: attn reports the same full heads.
  const std::string attn =
      "attn -m builtin:induction -p 'the cat sat on the mat and the cat' -n 2 --json --kv-policy-file ";
  const CliRun from_json = rhead_cli(attn + d.sub("plan.json"), d);
  ASSERT_EQ(from_json.exit_code, 0) << from_json.err;
  for (const std::string dir : {"duo", "duo_score"}) {
    const CliRun from_duo = rhead_cli(attn + d.sub(dir), d);
    ASSERT_EQ(from_duo.exit_code, 0) << from_duo.err;
    EXPECT_EQ(from_duo.out, from_json.out) << dir;
    EXPECT_NE(from_duo.out.find("\"blocks.1.attn.kv_full\":[true,true,false,false]"), std::string::npos)
        << from_duo.out;
  }
  // A ragged TSV or a folder without one: one line naming the file.
  std::ofstream(d.sub("duo/full_attention_heads.tsv")) << "0\t0\n1\n";
  r = rhead_cli(attn + d.sub("duo"), d);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("full_attention_heads.tsv:2: 1 columns"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  std::filesystem::create_directories(d.sub("empty"));
  r = rhead_cli(attn + d.sub("empty"), d);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  // A pattern for another shape.
  std::ofstream(d.sub("duo/full_attention_heads.tsv")) << "0\t0\t1\n1\t0\t0\n";
  r = rhead_cli(attn + d.sub("duo"), d);
  EXPECT_NE(r.err.find("the pattern has 2 layers x 3 KV heads"), std::string::npos) << r.err;
}

TEST(KvPlanCli, BadInputIsOneLine) {
  MkdtempDir d("kvplancli");
  const std::string scores = write_scores(d);
  for (const std::string args : {"--budget 5% --length 1000", "--budget half", "--budget 0.5 --length -5"}) {
    const CliRun r =
        rhead_cli("kv-plan -m builtin:induction --scores " + scores + " " + args + " -o " + d.sub("p.json"), d);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << ": " << r.err;
  }
}

// generate and attn take the same policy options: a window covering the run changes nothing,
// a narrow one is visible in attn's JSON, and bad options are one-line errors.
TEST(KvOptionsCli, GenerateAndAttn) {
  MkdtempDir d("kvoptcli");
  const std::string prompt = " -p 'the cat sat on the mat and the dog sat on the log and the cat' -n 8";
  const CliRun plain = rhead_cli("generate -m builtin:induction" + prompt, d);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  for (const std::string kv : {"--kv-window 4096", "--kv-window 2 --kv-full all"}) {
    const CliRun r = rhead_cli("generate -m builtin:induction" + prompt + " " + kv, d);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, plain.out) << kv;
    EXPECT_NE(r.err.find("KV policy: window"), std::string::npos) << r.err;
  }
  const CliRun a =
      rhead_cli("attn -m builtin:induction" + prompt + " --json --kv-window 4 --kv-sink 1 --kv-full heads:1-1", d);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  std::istringstream lines(a.out);
  std::string line;
  int steps = 0;
  while (std::getline(lines, line)) {
    const json j = json::parse(line);
    ++steps;
    EXPECT_EQ(j["blocks.1.attn.kv_full"], json({false, true, false, false}));
    const int64_t i = j["position"];
    for (int l = 0; l < 2; ++l)
      for (int h = 0; h < 4; ++h) {
        if (l == 1 && h == 1) continue;
        const int64_t p = j["blocks." + std::to_string(l) + ".attn.argmax"][h];
        EXPECT_TRUE(p < 1 || i - p < 4) << "head " << l << "-" << h << " at " << i << " looks at " << p;
      }
  }
  EXPECT_EQ(steps, 8);
  for (const std::string bad :
       {"--kv-window 8 --kv-full top:2", "--kv-full heads:1-1", "--kv-window 8 --kv-full heads:9-0"}) {
    const CliRun r = rhead_cli("generate -m builtin:induction" + prompt + " " + bad, d);
    EXPECT_NE(r.exit_code, 0) << bad;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << bad << ": " << r.err;
  }
}

// qa and cot run the full cache (their baseline) and the policy, with the accounting in every
// result line and in the summary.
TEST(KvOptionsCli, QaAndCotCarryTheAccounting) {
  MkdtempDir d("kvqacot");
  for (const std::string cmd : {"qa --max-new-tokens 4", "cot --max-new-tokens 4"}) {
    const std::string out = d.sub(cmd.substr(0, cmd.find(' ')));
    const CliRun r =
        rhead_cli(cmd + " -m builtin:induction --kv-window 8 --kv-sink 2 --kv-full heads:1-1 -q -o " + out, d);
    ASSERT_EQ(r.exit_code, 0) << cmd << ": " << r.err;
    std::istringstream lines(rhead::testing::read_text_file(out + "/results.jsonl"));
    std::string line;
    int with_policy = 0, without = 0;
    while (std::getline(lines, line)) {
      const json l = json::parse(line);
      const json& kv = l.at("kv_cache");
      EXPECT_EQ(kv["length"], l["prompt_tokens"]) << cmd;
      if (l["kv_policy"]["window"] == 8) {
        ++with_policy;
        EXPECT_EQ(l["kv_policy"]["full_heads"], json({"1-1"}));
        EXPECT_EQ(l["kv_policy"]["full_kv_heads"], json({"1-0"}));
        // 2 layers x 2 KV heads: KV head 1-0 whole, the others keep sink + window = 10 rows.
        const int64_t n = kv["length"];
        EXPECT_EQ(kv["kv_bytes_kept"].get<int64_t>(), (n + 3 * std::min<int64_t>(n, 10)) * 2 * 112 * 2) << cmd;
      } else {
        ++without;
        EXPECT_EQ(kv["kv_kept_fraction"], 1.0);
      }
    }
    EXPECT_GT(with_policy, 0) << cmd;
    EXPECT_EQ(with_policy, without) << cmd;
    const json summary = json::parse(rhead::testing::read_text_file(out + "/summary.json"));
    const json& rows = summary.contains("masks") ? summary["masks"] : summary["results"];
    int kept_rows = 0;
    for (const auto& row : rows) kept_rows += row["kv_kept_fraction"].get<double>() < 1.0;
    EXPECT_GT(kept_rows, 0) << cmd;
  }
}

}  // namespace

// `rhead export DIR --csv`: the CSV files read back by Python's csv module (an implementation
// independent of ours) hold the values of the run's own JSON files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "report/flat_export.h"
#include "synthetic_runs.h"
#include "test_helpers.h"

namespace {

namespace fs = std::filesystem;
using rhead::testing::quoted;
using rhead::testing::run_with_stderr;
using rhead::testing::ScratchDir;

// Reads every CSV file given with csv.DictReader and prints {file: [rows as dicts]} as JSON.
nlohmann::json read_back(const std::vector<std::string>& files) {
  std::string cmd =
      "/usr/bin/python3 -c \"import csv, json, sys; out = {}\n"
      "for p in sys.argv[1:]:\n"
      "    with open(p, newline='') as f: out[p.rsplit('/', 1)[-1]] = list(csv.DictReader(f))\n"
      "print(json.dumps(out))\"";
  for (const auto& f : files) cmd += " " + quoted(f);
  const auto r = run_with_stderr(cmd);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return nlohmann::json::parse(r.output);
}

rhead::testing::CommandResult rhead_export(const fs::path& dir, const fs::path& out) {
  return run_with_stderr(quoted(rhead::testing::rhead_binary()) + " export " + quoted(dir.string()) + " --csv -o " +
                         quoted(out.string()));
}

TEST(FlatExport, CsvFieldQuotesOnlyWhatItMust) {
  EXPECT_EQ(rhead::report::csv_field("plain"), "plain");
  EXPECT_EQ(rhead::report::csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(rhead::report::csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(rhead::report::csv_field("two\nlines"), "\"two\nlines\"");
}

TEST(FlatExport, DetectRunReadsBackWithPythonCsv) {
  ScratchDir scratch("rhead-export-");
  const fs::path run = scratch.path() / "detect";
  rhead::testing::write_detect_run(run, 1, "niah-tiny-f32.gguf");
  // An answer with a comma, a quote and a line break must survive the round trip.
  {
    std::ifstream in(run / "results.jsonl");
    std::string first, rest, line;
    std::getline(in, first);
    while (std::getline(in, line)) rest += line + "\n";
    nlohmann::json j = nlohmann::json::parse(first);
    j["answer"] = "eat, a \"sandwich\"\nand leave";
    rhead::testing::write_text(run / "results.jsonl", j.dump() + "\n" + rest);
  }
  const fs::path out = scratch.path() / "csv";
  const auto r = rhead_export(run, out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json back =
      read_back({(out / "heads.csv").string(), (out / "tests.csv").string(), (out / "summary.csv").string()});

  const nlohmann::json summary = nlohmann::json::parse(std::ifstream(run / "summary.json"));
  const nlohmann::json scores = nlohmann::json::parse(std::ifstream(run / "head_score.json"));
  ASSERT_EQ(back["heads.csv"].size(), 18u);
  std::map<int, std::string> by_rank;
  for (const auto& row : back["heads.csv"]) {
    const std::string head = row["head"];
    const auto& list = scores.at(head);
    double mean = 0;
    int fired = 0;
    for (double v : list) mean += v, fired += v > 0;
    mean /= static_cast<double>(list.size());
    EXPECT_NEAR(std::stod(row["mean"].get<std::string>()), mean, 1e-12) << head;
    EXPECT_NEAR(std::stod(row["frequency"].get<std::string>()), static_cast<double>(fired) / list.size(), 1e-12)
        << head;
    EXPECT_EQ(std::stoi(row["counted_tests"].get<std::string>()), summary["counted"].get<int>());
    EXPECT_EQ(head, row["layer"].get<std::string>() + "-" + row["head_index"].get<std::string>());
    if (mean == 0) {
      EXPECT_EQ(row["rank"], "") << head;  // a head that never copied is not ranked
      continue;
    }
    by_rank[std::stoi(row["rank"].get<std::string>())] = head;
  }
  ASSERT_GE(by_rank.size(), 6u);
  EXPECT_EQ(by_rank.begin()->first, 1);
  EXPECT_EQ(by_rank.rbegin()->first, static_cast<int>(by_rank.size()));  // ranks 1..n, each once
  EXPECT_EQ(by_rank.at(1).substr(0, 2), "2-");                           // the layer-2 heads retrieve

  ASSERT_EQ(back["tests.csv"].size(), static_cast<size_t>(summary["tests"].get<int>()));
  std::ifstream lines(run / "results.jsonl");
  std::map<std::string, nlohmann::json> line_of;
  for (std::string l; std::getline(lines, l);) {
    const auto j = nlohmann::json::parse(l);
    line_of[j["test_id"]] = j;
  }
  for (const auto& row : back["tests.csv"]) {
    const auto& j = line_of.at(row["test_id"].get<std::string>());
    EXPECT_EQ(row["answer"], j["answer"]);
    EXPECT_EQ(row["counted"], j["counted"].get<bool>() ? "true" : "false");
    EXPECT_DOUBLE_EQ(std::stod(row["rouge_recall"].get<std::string>()), j["rouge_recall"].get<double>());
    EXPECT_EQ(std::stoi(row["length"].get<std::string>()), j["length"].get<int>());
  }
  ASSERT_EQ(back["summary.csv"].size(), 1u);
  EXPECT_EQ(back["summary.csv"][0]["counted"], std::to_string(summary["counted"].get<int>()));
}

TEST(FlatExport, NiahRunHasOneRowPerTestAndConditionUnmaskedFirst) {
  ScratchDir scratch("rhead-export-");
  const fs::path run = scratch.path() / "niah";
  rhead::testing::write_niah_run(run);
  const fs::path out = scratch.path() / "csv";
  const auto r = rhead_export(run, out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json back = read_back({(out / "tests.csv").string(), (out / "summary.csv").string()});
  ASSERT_EQ(back["tests.csv"].size(), 50u);  // 2 conditions x 5 lengths x 5 depths
  double none_sum = 0;
  for (const auto& row : back["tests.csv"])
    if (row["mask"] == "none") none_sum += std::stod(row["score"].get<std::string>());
  const auto& rows = back["summary.csv"];
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["mask"], "none");
  EXPECT_EQ(rows[1]["mask"], "top-2");
  EXPECT_EQ(rows[0]["tests"], "25");
  const nlohmann::json summary = nlohmann::json::parse(std::ifstream(run / "summary.json"));
  EXPECT_NEAR(std::stod(rows[0]["mean_score"].get<std::string>()), none_sum / 25, 1e-9);
  EXPECT_NEAR(std::stod(rows[0]["mean_score"].get<std::string>()), summary["mean_score"].get<double>(), 1e-9);
}

TEST(FlatExport, NotARunFolderIsOneLineError) {
  ScratchDir scratch("rhead-export-");
  const auto r = rhead_export(scratch.path(), scratch.path() / "csv");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("not a detect or niah run folder"), std::string::npos) << r.output;
}

}  // namespace

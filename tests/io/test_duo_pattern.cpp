// DuoAttention's pattern folder: a folder written the way DuoAttention saves its patterns
// (numpy's savetxt: "%.18e" cells, tab-separated, gates with training noise slightly below 0,
// config.json holding every training argument) reads back with the published loader's
// meaning (clip to [0, 1], full where gate >= threshold); rhead's writer round-trips exactly;
// bad input names the file and line.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "io/duo_pattern.h"
#include "io/error.h"
#include "test_support.h"

namespace rhead {
namespace {

using testing::MkdtempDir;

// One numpy savetxt cell.
std::string np_cell(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.18e", v);
  return buf;
}

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// 3 layers x 4 KV heads in the published shape.
std::string published_folder(const MkdtempDir& d, const std::string& name) {
  const double g[3][4] = {{-9.584426879882812500e-05, 1.0, 5.5859375e-01, 2.0217895507812500e-04},
                          {1.0, 4.277343750000000000e-01, 0.5, 1.0000001},
                          {9.882812500000000000e-01, -1.05e-04, 1.0, 7.343750000000000000e-01}};
  std::string tsv;
  for (const auto& row : g) {
    for (int c = 0; c < 4; ++c) tsv += (c ? "\t" : "") + np_cell(row[c]);
    tsv += "\n";
  }
  const std::string dir = d.sub(name);
  std::filesystem::create_directories(dir);
  write(dir + "/full_attention_heads.tsv", tsv);
  write(dir + "/config.json",
        R"({"model_name": "models/some-model", "config_name": null, "lr": 0.02, "num_steps": 2000, )"
        R"("sink_size": 128, "recent_size": 256, "deploy_sink_size": null, "deploy_recent_size": null, )"
        R"("reg_weight": 0.05, "threshold": 0.5, "sparsity": null, "seed": 42})");
  return dir;
}

TEST(DuoPattern, ReadsThePublishedShape) {
  MkdtempDir d("duo");
  const std::string dir = published_folder(d, "pattern");
  ASSERT_TRUE(is_duo_pattern_dir(dir));
  const DuoPattern p = read_duo_pattern(dir);
  EXPECT_EQ(p.n_layer, 3);
  EXPECT_EQ(p.n_kv_head, 4);
  EXPECT_EQ(p.sink_size, 128);
  EXPECT_EQ(p.recent_size, 256);
  ASSERT_TRUE(p.threshold.has_value());
  EXPECT_EQ(*p.threshold, 0.5);
  // Clipped like the published loader: noise below 0 reads 0, above 1 reads 1.
  EXPECT_EQ(p.gate(0, 0), 0.0);
  EXPECT_EQ(p.gate(1, 3), 1.0);
  EXPECT_EQ(p.gate(2, 1), 0.0);
  EXPECT_EQ(p.gate(0, 2), 5.5859375e-01);
  // gate >= threshold: full (0.5 itself is full).
  const bool full[3][4] = {{false, true, true, false}, {true, false, true, true}, {true, false, true, true}};
  for (int l = 0; l < 3; ++l)
    for (int g = 0; g < 4; ++g) EXPECT_EQ(p.is_full(l, g), full[l][g]) << l << "-" << g;
}

TEST(DuoPattern, MissingThresholdMeansOneHalf) {
  MkdtempDir d("duo");
  const std::string dir = published_folder(d, "p");
  write(dir + "/config.json", R"({"sink_size": 4, "recent_size": 64, "threshold": null})");
  const DuoPattern p = read_duo_pattern(dir);
  EXPECT_FALSE(p.threshold.has_value());
  EXPECT_EQ(p.effective_threshold(), 0.5);
  EXPECT_TRUE(p.is_full(0, 2));
  EXPECT_FALSE(p.is_full(1, 1));
}

TEST(DuoPattern, RoundTripsExactly) {
  MkdtempDir d("duo");
  DuoPattern p;
  p.n_layer = 2;
  p.n_kv_head = 3;
  p.gates = {0.0, 1.0, 0.1, 1.0 / 3.0, 0.7, 0.0};
  p.sink_size = 4;
  p.recent_size = 32;
  p.threshold = 0.1;
  write_duo_pattern(d.sub("out"), p, {{"format", "rhead-kv-plan"}, {"budget", 0.25}});
  EXPECT_EQ(testing::read_text_file(d.sub("out/full_attention_heads.tsv")),
            "0\t1\t0.10000000000000001\n0.33333333333333331\t0.69999999999999996\t0\n");
  const DuoPattern back = read_duo_pattern(d.sub("out"));
  EXPECT_EQ(back.n_layer, 2);
  EXPECT_EQ(back.n_kv_head, 3);
  EXPECT_EQ(back.gates, p.gates);  // bit for bit
  EXPECT_EQ(back.sink_size, 4);
  EXPECT_EQ(back.recent_size, 32);
  EXPECT_EQ(back.threshold, p.threshold);
  // The writer's extra fields sit beside the pattern's.
  EXPECT_NE(testing::read_text_file(d.sub("out/config.json")).find("\"budget\": 0.25"), std::string::npos);
  // Without a threshold none is written.
  p.threshold.reset();
  write_duo_pattern(d.sub("out2"), p);
  EXPECT_FALSE(read_duo_pattern(d.sub("out2")).threshold.has_value());
}

TEST(DuoPattern, BadInputNamesFileAndLine) {
  MkdtempDir d("duo");
  const std::string dir = published_folder(d, "p");
  const std::string tsv = dir + "/full_attention_heads.tsv";
  const auto error_of = [&]() -> std::string {
    try {
      read_duo_pattern(dir);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  struct Case {
    std::string tsv, expect;
  };
  for (const Case& c : std::vector<Case>{{"1\t0\n1\t0\t1\n", tsv + ":2: 3 columns, the first row has 2"},
                                         {"1\t0\n1\tx\n", tsv + ":2: column 2: 'x' is not a number"},
                                         {"1\t0\n\n1\t0\n", tsv + ":2: empty row"},
                                         {"1\t0\n1\tnan\n", tsv + ":2: column 2: 'nan' is not a finite number"},
                                         {"1\t 0\n", tsv + ":1: column 2: ' 0' is not a number"},
                                         {"1\t\t0\n", tsv + ":1: empty cell in column 2"},
                                         {"", tsv + ": no rows"}}) {
    write(tsv, c.tsv);
    const std::string e = error_of();
    EXPECT_EQ(e.rfind(c.expect, 0), 0u) << "got: " << e << "\nexpected: " << c.expect;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
  write(tsv, "1\t0\r\n0\t1\r\n");  // CRLF rows read fine
  EXPECT_EQ(error_of(), "");
  const std::string cfg = dir + "/config.json";
  for (const std::string& bad :
       {std::string(R"({"recent_size": 8})"), std::string(R"({"sink_size": 4, "recent_size": 0})"),
        std::string(R"({"sink_size": 4.5, "recent_size": 8})"),
        std::string(R"({"sink_size": 4, "recent_size": 8, "threshold": "high"})"), std::string("[1, 2]"),
        std::string("{")}) {
    write(cfg, bad);
    const std::string e = error_of();
    EXPECT_EQ(e.rfind(cfg + ": ", 0), 0u) << bad << " -> " << e;
  }
  std::filesystem::remove(cfg);
  EXPECT_EQ(error_of().rfind(cfg, 0), 0u);
  EXPECT_FALSE(is_duo_pattern_dir(d.sub("nothing")));
  EXPECT_FALSE(is_duo_pattern_dir(tsv));
}

}  // namespace
}  // namespace rhead

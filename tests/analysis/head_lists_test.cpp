// Published ranked head lists: QRHead's "L-H,L-H,..." and ReDeEP's top-k heads JSON
// ([[layer, head], ...]), read and written by model/heads, loaded as score maps, used as
// --mask file:PATH, and written by `rhead heads`.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "analysis/score_map.h"
#include "analysis/stats.h"
#include "io/error.h"
#include "model/heads.h"
#include "test_support.h"

namespace {

using namespace rhead;

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

TEST(HeadLists, BothShapesParseInRankOrder) {
  const std::vector<HeadId> want = {{13, 18}, {13, 21}, {8, 11}};
  EXPECT_EQ(parse_head_list("13-18,13-21,8-11", "q"), want);
  EXPECT_EQ(parse_head_list(" 13-18, 13-21,\n8-11\n", "q"), want);
  EXPECT_EQ(parse_head_list("[[13, 18], [13, 21], [8, 11]]", "r"), want);
  EXPECT_EQ(parse_head_list(qrhead_head_list(want), "q"), want);
  EXPECT_EQ(parse_head_list(redeep_head_list(want), "r"), want);
  EXPECT_EQ(qrhead_head_list(want), "13-18,13-21,8-11\n");
  EXPECT_EQ(nlohmann::json::parse(redeep_head_list(want)), nlohmann::json::parse("[[13,18],[13,21],[8,11]]"));
}

TEST(HeadLists, BadListsAreOneLineErrors) {
  for (const char* bad :
       {"", "13-18,,8-11", "13-18,13-18", "[[1,2],[3]]", "[[1,-2]]", "[1,2]", "{\"1-2\": [1]}", "13:18", "[[1,2]"}) {
    try {
      parse_head_list(bad, "heads.txt");
      FAIL() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("heads.txt"), std::string::npos) << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
  }
}

TEST(HeadLists, FileSelectionAndScoreMap) {
  rhead::testing::MkdtempDir d("rhead_test_head_lists_");
  write(d.sub("q.txt"), "2-3,0-1,2-0\n");
  write(d.sub("r.json"), "[[2, 3], [0, 1], [2, 0]]\n");
  ModelConfig c;
  c.n_layer = 3;
  c.n_head = 6;
  c.n_kv_head = 2;
  const std::vector<HeadId> sorted = {{0, 1}, {2, 0}, {2, 3}};
  EXPECT_EQ(select_heads("file:" + d.sub("q.txt"), c), sorted);
  EXPECT_EQ(select_heads("file:" + d.sub("r.json"), c), sorted);
  write(d.sub("outside.txt"), "7-0");
  EXPECT_THROW(select_heads("file:" + d.sub("outside.txt"), c), Error);
  EXPECT_THROW(select_heads("file:" + d.sub("missing.txt"), c), Error);
  // As a score map: ranks become scores n - r over n, so the order round-trips.
  const auto q = analysis::load_score_map(d.sub("q.txt")), r = analysis::load_score_map(d.sub("r.json"));
  EXPECT_EQ(q.n_layer, 3);
  EXPECT_EQ(q.n_head, 4);
  EXPECT_DOUBLE_EQ(q.mean_at(2, 3), 1.0);
  EXPECT_DOUBLE_EQ(q.mean_at(0, 1), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(q.mean_at(2, 0), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(q.mean_at(1, 1), 0.0);
  const auto cmp = analysis::compare_pair(q, r, false, {3});
  EXPECT_DOUBLE_EQ(cmp.spearman, 1.0);
  EXPECT_EQ(cmp.overlaps[0].shared, 3);
}

TEST(HeadLists, HeadsCommandWritesWhatIsReadBack) {
  const std::string llama = rhead::testing::shared_path("data/head_scores/llama-2-7b-80k.json");
  RHEAD_REQUIRE_FILE(llama);
  rhead::testing::MkdtempDir d("rhead_test_head_lists_");
  for (const char* format : {"qrhead", "redeep"}) {
    const std::string out = d.sub(std::string("top.") + format);
    const auto r = rhead::testing::run_rhead({"heads", llama, "--top", "10", "--format", format, "-o", out}, d.path);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // The published top heads of METHOD.md §5, in order.
    const auto heads = read_head_list(out);
    ASSERT_EQ(heads.size(), 10u);
    EXPECT_EQ(heads[0], (HeadId{16, 19}));
    EXPECT_EQ(heads[1], (HeadId{11, 15}));
    EXPECT_EQ(heads[2], (HeadId{8, 26}));
    EXPECT_EQ(heads[9], (HeadId{21, 30}));
    // Compared with the score file it came from, over the listed heads' grid.
    const auto c = rhead::testing::run_rhead({"compare", llama, out, "--allow-shape-mismatch"}, d.path);
    EXPECT_EQ(c.exit_code, 0) << c.err;
  }
}

}  // namespace

namespace {

TEST(HeadLists, KvHeadMapTakesEachGroupsBestQueryHead) {
  analysis::ScoreMap q;
  q.source = "q.json";
  q.n_layer = 1;
  q.n_head = 6;
  q.mean = HeadGrid<double>(1, 6);
  q.frequency = HeadGrid<double>(1, 6);
  const double means[] = {0.1, 0.5, 0.0, 0.0, 0.3, 0.2};
  for (int h = 0; h < 6; ++h)
    q.mean[static_cast<std::size_t>(h)] = means[h], q.frequency[static_cast<std::size_t>(h)] = h / 10.0;
  const analysis::ScoreMap kv = analysis::kv_head_map(q, 3);
  EXPECT_TRUE(kv.kv_heads);
  ASSERT_EQ(kv.n_head, 3);
  EXPECT_DOUBLE_EQ(kv.mean_at(0, 0), 0.5);
  EXPECT_DOUBLE_EQ(kv.mean_at(0, 1), 0.0);
  EXPECT_DOUBLE_EQ(kv.mean_at(0, 2), 0.3);
  EXPECT_DOUBLE_EQ(kv.frequency[2], 0.5);
  EXPECT_THROW(analysis::kv_head_map(q, 4), Error);  // 6 query heads do not split into 4 groups
}

TEST(HeadLists, DuoAttentionPatternLoadsAsAKvHeadMap) {
  rhead::testing::MkdtempDir d("rhead_test_duo_map_");
  std::filesystem::create_directories(d.sub("pattern"));
  // Published gates carry training noise just outside [0, 1]; the threshold comes from config.json.
  write(d.sub("pattern/full_attention_heads.tsv"), "1.0\t-9.6e-05\t0.4\n0.7\t0.0\t1.00002\n");
  write(d.sub("pattern/config.json"), R"({"sink_size": 64, "recent_size": 256, "threshold": 0.6})");
  const analysis::ScoreMap m = analysis::load_score_map(d.sub("pattern"));
  EXPECT_TRUE(m.kv_heads);
  EXPECT_EQ(m.n_layer, 2);
  EXPECT_EQ(m.n_head, 3);
  EXPECT_DOUBLE_EQ(m.mean_at(0, 1), 0.0);
  EXPECT_DOUBLE_EQ(m.mean_at(1, 2), 1.0);
  EXPECT_DOUBLE_EQ(m.frequency[m.index(1, 0)], 1.0);  // 0.7 >= 0.6: a full head
  EXPECT_DOUBLE_EQ(m.frequency[m.index(0, 2)], 0.0);  // 0.4 < 0.6: streaming
  EXPECT_EQ(analysis::load_score_map(d.sub("pattern/full_attention_heads.tsv")).mean.values, m.mean.values);
  write(d.sub("pattern/full_attention_heads.tsv"), "1.0\t0.5\n0.7\n");  // ragged
  EXPECT_THROW(analysis::load_score_map(d.sub("pattern")), Error);
}

}  // namespace

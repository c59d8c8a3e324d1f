// The heads vocabulary: "L-H" keys, the layer-major grid, the head-selection grammar (every
// kind, its errors, top-K ties, the seeded random-K draw and what it excludes) and the
// copy-paste rule, including its decision that a masked head never copies.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "io/error.h"
#include "model/heads.h"
#include "model/probes.h"
#include "experiments/retrieval_score.h"

namespace {

using namespace rhead;

ModelConfig shape(int layers, int heads, int kv_heads) {
  ModelConfig c;
  c.n_layer = layers;
  c.n_head = heads;
  c.n_kv_head = kv_heads;
  return c;
}

HeadGrid<double> grid(int layers, int heads, const std::vector<std::pair<HeadId, double>>& scores) {
  HeadGrid<double> g(layers, heads);
  for (const auto& [id, s] : scores) g[id] = s;
  return g;
}

// niah-tiny's detect scores (models README): six layer-2 heads, everything else 0.
HeadGrid<double> niah_tiny_scores() {
  return grid(3, 6, {{{2, 0}, 0.99}, {{2, 1}, 0.99}, {{2, 2}, 0.98}, {{2, 5}, 0.71}, {{2, 4}, 0.70}, {{2, 3}, 0.51}});
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(HeadId, KeyAndParseRoundTrip) {
  EXPECT_EQ((HeadId{2, 15}).key(), "2-15");
  EXPECT_EQ(HeadId::parse("31-0"), (HeadId{31, 0}));
  for (const char* bad : {"", "3", "3-", "-3", "a-b", "1-2-3", "1- 2", "-1-2"})
    EXPECT_NE(error_of([&] { HeadId::parse(bad, "scores.json"); }).find(std::string("scores.json: '") + bad + "'"),
              std::string::npos)
        << bad;
  EXPECT_LT((HeadId{0, 5}), (HeadId{1, 0}));  // layer-major order
  EXPECT_EQ(head_keys({{2, 0}, {0, 1}}), (std::vector<std::string>{"2-0", "0-1"}));
}

TEST(HeadGrid, IsLayerMajor) {
  HeadGrid<int> g(3, 4, 7);
  EXPECT_EQ(g.size(), 12u);
  EXPECT_EQ(g.index(1, 2), 6u);
  EXPECT_EQ(g.head_at(6), (HeadId{1, 2}));
  g[HeadId{2, 3}] = 1;
  EXPECT_EQ(g.values.back(), 1);
  EXPECT_EQ(g.at(0, 0), 7);
}

TEST(HeadSelection, EveryKindOfTheGrammar) {
  const ModelConfig c = shape(3, 6, 2);
  const HeadGrid<double> scores = niah_tiny_scores();
  EXPECT_TRUE(select_heads("none", c).empty());
  EXPECT_EQ(select_heads("all", c).size(), 18u);
  EXPECT_EQ(select_heads("heads:2-1,0-5", c), (std::vector<HeadId>{{0, 5}, {2, 1}}));
  // A head listed twice is refused, naming it.
  try {
    select_heads("heads:2-1,0-5,2-1", c);
    ADD_FAILURE() << "heads:2-1,0-5,2-1 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'2-1' is listed twice"), std::string::npos) << e.what();
  }
  EXPECT_EQ(select_heads("kv:1-1", c), (std::vector<HeadId>{{1, 3}, {1, 4}, {1, 5}}));
  EXPECT_EQ(select_heads("kv:0-3", shape(1, 4, 4)), (std::vector<HeadId>{{0, 3}}));  // no GQA: one head
  EXPECT_EQ(select_heads("top:2", c, &scores), (std::vector<HeadId>{{2, 0}, {2, 1}}));
  EXPECT_TRUE(select_heads("top:0", c, &scores).empty());
  EXPECT_EQ(select_heads("random:3", c, &scores, 5).size(), 3u);
  const HeadSelection s = parse_head_selection("random:4");
  EXPECT_EQ(s.kind, SelectionKind::random);
  EXPECT_EQ(s.k, 4);
  EXPECT_TRUE(s.needs_scores());
  EXPECT_EQ(parse_head_selection("kv:0-1").kind, SelectionKind::kv);
  EXPECT_STREQ(selection_kind_name(SelectionKind::all), "all");
}

TEST(HeadSelection, BadSpecsNameTheSpecOnOneLine) {
  const ModelConfig c = shape(3, 6, 2);
  const HeadGrid<double> scores = niah_tiny_scores();
  const std::pair<const char*, const char*> cases[] = {
      {"heads:3-0", "layer 3"},  {"heads:0-6", "head 6"},     {"kv:0-2", "KV group 2"},
      {"top:x", "'x'"},          {"random:-1", "'-1'"},       {"bottom:3", "unknown kind 'bottom'"},
      {"all:3", "no arguments"}, {"top:2", "needs --scores"}, {"top", "KIND:ARGS"},
  };
  for (const auto& [spec, needle] : cases) {
    const bool scored = std::string(spec) != "top:2";
    const std::string msg = error_of([&] { select_heads(spec, c, scored ? &scores : nullptr); });
    EXPECT_NE(msg.find(needle), std::string::npos) << spec << " -> " << msg;
    EXPECT_NE(msg.find(std::string("'") + spec + "'"), std::string::npos) << "names the spec: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  EXPECT_THROW(select_heads("top:19", c, &scores), Error);  // only 18 heads
  const HeadGrid<double> other(4, 6);
  EXPECT_THROW(select_heads("top:1", c, &other), Error);  // map of another shape
}

TEST(HeadSelection, TopKFollowsScoresWithLayerMajorTies) {
  const auto scores = niah_tiny_scores();
  const auto cfg = shape(3, 6, 2);
  EXPECT_EQ(select_heads("top:3", cfg, &scores), (std::vector<HeadId>{{2, 0}, {2, 1}, {2, 2}}));
  EXPECT_EQ(select_heads("top:5", cfg, &scores), (std::vector<HeadId>{{2, 0}, {2, 1}, {2, 2}, {2, 5}, {2, 4}}));
  // Beyond the scored heads the zero-score heads follow in layer-major order.
  EXPECT_EQ(select_heads("top:7", cfg, &scores).back(), (HeadId{0, 0}));
  // A map with no scored head (empty or all-zero lists) ranks nothing: top:K is refused.
  const HeadGrid<double> unscored(3, 6);
  try {
    select_heads("top:2", cfg, &unscored);
    ADD_FAILURE() << "top:2 on an unscored map was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no head has a score above 0"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(select_heads("top:0", cfg, &unscored).empty());
}

TEST(HeadSelection, RandomNeverDrawsScoredTopHeadsAndUsesTheRealShape) {
  const auto scores = niah_tiny_scores();
  const auto cfg = shape(3, 6, 2);
  EXPECT_EQ(random_exclusions(scores).size(), 6u);
  for (uint64_t seed = 0; seed < 200; ++seed) {
    const auto heads = select_heads("random:5", cfg, &scores, seed);
    ASSERT_EQ(heads.size(), 5u);
    EXPECT_EQ(std::set<HeadId>(heads.begin(), heads.end()).size(), 5u) << "duplicate head, seed " << seed;
    for (HeadId h : heads) EXPECT_LT(h.layer, 2) << "a scored layer-2 head was drawn, seed " << seed;
  }
  // All twelve unscored heads are the whole pool; a thirteenth does not exist.
  std::vector<HeadId> expected;
  for (int l = 0; l < 2; ++l)
    for (int h = 0; h < 6; ++h) expected.push_back({l, h});
  EXPECT_EQ(select_heads("random:12", cfg, &scores, 7), expected);
  EXPECT_THROW(select_heads("random:13", cfg, &scores, 7), Error);
}

TEST(HeadSelection, RandomIsSeededAndCoversThePool) {
  const auto scores = niah_tiny_scores();
  const auto cfg = shape(3, 6, 2);
  EXPECT_EQ(select_heads("random:4", cfg, &scores, 42), select_heads("random:4", cfg, &scores, 42));
  std::set<std::vector<HeadId>> distinct;
  std::set<HeadId> seen;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    const auto heads = select_heads("random:3", cfg, &scores, seed);
    distinct.insert(heads);
    seen.insert(heads.begin(), heads.end());
  }
  EXPECT_GT(distinct.size(), 30u);  // C(12, 3) = 220 possible draws
  EXPECT_EQ(seen.size(), 12u);
}

TEST(HeadSelection, RandomExcludesOnlyTheTop100WithPositiveScore) {
  // A 32 x 40 model (1280 heads) with 150 positive heads: ranks 1-100 are excluded, ranks
  // 101-150 stay eligible, as do the zero-score heads.
  const auto cfg = shape(32, 40, 8);
  std::vector<std::pair<HeadId, double>> pos;
  for (int i = 0; i < 150; ++i) pos.push_back({{i / 40, i % 40}, 1.0 - i * 0.005});
  const auto scores = grid(32, 40, pos);
  const auto excluded = random_exclusions(scores);
  ASSERT_EQ(excluded.size(), static_cast<size_t>(kRandomExcludeTop));
  const std::set<HeadId> ex(excluded.begin(), excluded.end());
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(ex.count({i / 40, i % 40}));
  std::set<HeadId> drawn;
  for (uint64_t seed = 0; seed < 20; ++seed)
    for (HeadId h : select_heads("random:100", cfg, &scores, seed)) {
      EXPECT_FALSE(ex.count(h)) << h.key();
      drawn.insert(h);
    }
  const auto rank = [](HeadId h) { return h.layer * 40 + h.head; };
  EXPECT_TRUE(std::any_of(drawn.begin(), drawn.end(), [&](HeadId h) { return rank(h) >= 100 && rank(h) < 150; }));
  EXPECT_TRUE(std::any_of(drawn.begin(), drawn.end(), [](HeadId h) { return h.layer >= 30; }));
}

TEST(CopyRule, TokenAtTheArgmaxPositionAndNotOverridden) {
  const std::vector<int32_t> tokens = {1, 40, 41, 42};
  EXPECT_TRUE(is_copy(2, tokens, 41, false));
  EXPECT_FALSE(is_copy(2, tokens, 42, false));  // looks at another token
  EXPECT_FALSE(is_copy(2, tokens, 41, true));   // masked: its output does not reach the model
  EXPECT_FALSE(is_copy(-1, tokens, 1, false));  // no position recorded
  EXPECT_FALSE(is_copy(4, tokens, 1, false));   // outside the sequence
}

TEST(CopyRule, TheRetrievalScorerUsesItAndSkipsMaskedHeads) {
  // Two layers x two heads; every head looks at position 2, which holds the emitted token 41.
  const std::vector<int32_t> prompt = {1, 40, 41, 42};
  ProbeRecord rec;
  rec.n_obs = 1;
  rec.n_layer = 2;
  rec.n_head = 2;
  rec.argmax.assign(4, 2);
  const ModelConfig c = shape(2, 2, 2);
  const HeadMask mask = make_head_mask({{1, 0}}, c);
  RetrievalScorer plain(2, 2, NeedleSpan{1, 3}, prompt);
  RetrievalScorer masked(2, 2, NeedleSpan{1, 3}, prompt, &mask);
  plain.observe(rec, 41);
  masked.observe(rec, 41);
  EXPECT_EQ(plain.copies(), (std::vector<int>{1, 1, 1, 1}));
  EXPECT_EQ(masked.copies(), (std::vector<int>{1, 1, 0, 1}));
  EXPECT_DOUBLE_EQ(masked.scores()[1], 0.5);  // 1 / |span|
  EXPECT_DOUBLE_EQ(masked.scores()[2], 0.0);
}

}  // namespace

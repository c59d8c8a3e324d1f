// KV-cache policies without a model: the accounting on hand-computed cases (GQA included),
// the --kv-full grammar, the conditions a request expands to, kv-plan under budgets, the
// head_policy.json round trip, and the sweep points.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "io/error.h"
#include "model/kv_policy.h"
#include "conditions/kv_conditions.h"
#include "report/kv_sweep.h"
#include "test_support.h"

namespace rhead {
namespace {

using nlohmann::json;

ModelConfig shape(int layers, int heads, int kv, int head_dim) {
  ModelConfig c;
  c.n_layer = layers;
  c.n_head = heads;
  c.n_kv_head = kv;
  c.head_dim = head_dim;
  return c;
}

TEST(KvAccounting, HandComputedWithGqa) {
  // 2 layers x 4 query heads, 2 KV heads (query heads 0,1 read KV head 0; 2,3 read KV head 1).
  const ModelConfig c = shape(2, 4, 2, 8);
  KvPolicy p(c, /*window=*/10, /*sink=*/2);
  p.set_full(0, 1);
  p.set_full(1, 2);
  p.set_full(1, 3);
  // Length 100: a restricted head keeps 2 + 10 = 12 rows, a full one 100.
  const KvAccounting a = kv_accounting(p, c.head_dim, /*f16*/ 2, 100);
  EXPECT_EQ(a.bytes_per_row, 2 * 8 * 2);
  // Query view: layer 0 = 12 + 100 + 12 + 12, layer 1 = 12 + 12 + 100 + 100.
  EXPECT_EQ(a.query_rows_kept, 136 + 224);
  EXPECT_EQ(a.query_rows_full, 800);
  EXPECT_DOUBLE_EQ(a.query_kept_fraction(), 0.45);
  // KV view: layer 0 KV head 0 is whole (its query head 1 is full), KV head 1 windowed;
  // layer 1 KV head 0 windowed, KV head 1 whole. 100 + 12 + 12 + 100.
  EXPECT_EQ(a.kv_rows_kept, 224);
  EXPECT_EQ(a.kv_rows_full, 400);
  EXPECT_DOUBLE_EQ(a.kv_kept_fraction(), 0.56);
  EXPECT_EQ(a.kv_bytes_kept(), 224 * 32);
  EXPECT_EQ(a.kv_bytes_full(), 400 * 32);
  EXPECT_EQ(a.query_bytes_kept(), 360 * 32);
  EXPECT_EQ(a.full_query_heads, 3);
  EXPECT_EQ(a.full_kv_heads, 2);
  EXPECT_EQ(p.full_kv_groups(), (std::vector<HeadId>{{0, 0}, {1, 1}}));

  // Up to sink + window positions nothing is dropped; one more and the windows bite.
  EXPECT_DOUBLE_EQ(kv_accounting(p, 8, 2, 5).kv_kept_fraction(), 1.0);
  EXPECT_DOUBLE_EQ(kv_accounting(p, 8, 2, 12).kv_kept_fraction(), 1.0);
  EXPECT_EQ(kv_accounting(p, 8, 2, 13).kv_rows_kept, 13 + 12 + 12 + 13);
  EXPECT_TRUE(p.is_identity_up_to(12));
  EXPECT_FALSE(p.is_identity_up_to(13));

  // f32 cache: twice the bytes, same fractions.
  EXPECT_EQ(kv_accounting(p, 8, 4, 100).kv_bytes_kept(), 224 * 64);
  // No policy: everything kept, every head counts as full.
  const KvAccounting none = kv_accounting(KvPolicy(c, 0, 4), 8, 2, 100);
  EXPECT_EQ(none.kv_rows_kept, 400);
  EXPECT_EQ(none.full_kv_heads, 4);
  EXPECT_EQ(none.full_query_heads, 8);
}

TEST(KvAccounting, OneFullQueryHeadKeepsItsWholeKvHead) {
  // 8 query heads on 2 KV heads (4 per group): one full query head makes the query view keep
  // 1/8 of the cache whole but the KV view 1/2.
  const ModelConfig c = shape(1, 8, 2, 4);
  KvPolicy p(c, 1, 0);
  p.set_full(0, 5);
  const KvAccounting a = kv_accounting(p, 4, 2, 1000);
  EXPECT_EQ(a.query_rows_kept, 1000 + 7 * 1);
  EXPECT_EQ(a.kv_rows_kept, 1000 + 1);
  EXPECT_EQ(p.head_windows(0), (std::vector<int32_t>{1, 1, 1, 1, 1, 0, 1, 1}));
  EXPECT_TRUE(KvPolicy(c, 0, 4).head_windows(0).empty());
}

TEST(KvAccounting, VisibilityRule) {
  // Window 3, sink 2, query at 10: keys 0, 1 (sink) and 8, 9, 10 (window).
  std::vector<int64_t> seen;
  for (int64_t j = 0; j <= 10; ++j)
    if (kv_visible(10, j, 3, 2)) seen.push_back(j);
  EXPECT_EQ(seen, (std::vector<int64_t>{0, 1, 8, 9, 10}));
  EXPECT_TRUE(kv_visible(10, 0, 0, 0));  // window 0: no policy
}

analysis::ScoreMap tiny_scores() {
  // niah-tiny's shape: 3 layers x 6 heads. KV head (2,0) scores 0.9, (2,1) 0.8, (1,1) 0.05.
  json doc = json::object();
  for (int l = 0; l < 3; ++l)
    for (int h = 0; h < 6; ++h) doc[std::to_string(l) + "-" + std::to_string(h)] = json::array({0.0});
  doc["2-0"] = {0.9};
  doc["2-1"] = {0.5};
  doc["2-2"] = {0.3};
  doc["2-3"] = {0.8};
  doc["2-4"] = {0.2};
  doc["2-5"] = {0.1};
  doc["1-4"] = {0.05};
  return analysis::score_map_from_reference_json(doc, "scores.json");
}

TEST(KvPlan, BudgetsOnNiahTinyShape) {
  const ModelConfig c = shape(3, 6, 2, 16);
  const analysis::ScoreMap s = tiny_scores();
  KvPlanRequest r;
  r.length = 512;
  r.window = 32;
  r.sink = 4;
  // 6 KV heads; a windowed one keeps 36 of 512 rows. Full cache 3072 rows.
  // 0 full: 216/3072 = 7.03%; 1: 692/3072 = 22.5%; 2: 1168/3072 = 38.0%; 3: 1644/3072 = 53.5%.
  r.budget = 0.10;
  KvPlan p = plan_kv_cache(s, c, r);
  EXPECT_TRUE(p.full.empty());
  EXPECT_DOUBLE_EQ(p.floor_fraction, 216.0 / 3072);
  EXPECT_EQ(p.predicted.kv_rows_kept, 216);
  r.budget = 0.25;
  p = plan_kv_cache(s, c, r);
  ASSERT_EQ(p.full.size(), 1u);
  EXPECT_EQ(p.full[0].layer, 2);
  EXPECT_EQ(p.full[0].kv_head, 0);
  EXPECT_EQ(p.predicted.kv_rows_kept, 692);
  EXPECT_EQ(p.policy.full_heads(), (std::vector<HeadId>{{2, 0}, {2, 1}, {2, 2}}));
  r.budget = 0.50;
  p = plan_kv_cache(s, c, r);
  ASSERT_EQ(p.full.size(), 2u);
  EXPECT_EQ(p.full[1].kv_head, 1);
  EXPECT_EQ(p.predicted.kv_bytes_kept(), 1168 * 2 * 16 * 2);
  EXPECT_EQ(p.predicted.kv_bytes_full(), 3072 * 2 * 16 * 2);
  r.budget = 1.0;  // heads of score 0 are never kept whole, whatever the budget
  p = plan_kv_cache(s, c, r);
  ASSERT_EQ(p.full.size(), 3u);
  EXPECT_EQ(p.full[2].layer, 1);
  EXPECT_EQ(p.full[2].kv_head, 1);
  EXPECT_EQ(p.predicted.kv_rows_kept, 1644);
  r.budget = 0.05;
  EXPECT_THROW(plan_kv_cache(s, c, r), Error);
  r.budget = 1.5;
  EXPECT_THROW(plan_kv_cache(s, c, r), Error);
  r.budget = 0.5;
  EXPECT_THROW(plan_kv_cache(s, shape(3, 8, 2, 16), r), Error);  // scores of another shape
}

TEST(KvPlan, PolicyFileRoundTrip) {
  const ModelConfig c = shape(3, 6, 2, 16);
  KvPlanRequest r;
  r.length = 512;
  r.window = 32;
  r.budget = 0.5;
  const KvPlan p = plan_kv_cache(tiny_scores(), c, r);
  const json j = kv_plan_json(p, c, "model.gguf", "scores.json");
  EXPECT_EQ(j["full_query_heads"], json({"2-0", "2-1", "2-2", "2-3", "2-4", "2-5"}));
  EXPECT_EQ(j["full_kv_heads"][0]["query_heads"], json({0, 1, 2}));
  EXPECT_NEAR(j["predicted"]["kv_kept_fraction"].get<double>(), 1168.0 / 3072, 1e-12);
  testing::MkdtempDir d("kvplan");
  const std::string path = d.sub("head_policy.json");
  std::ofstream(path) << j.dump(2);
  const KvPolicy back = read_head_policy(path, c);
  EXPECT_EQ(back.window, 32);
  EXPECT_EQ(back.sink, 4);
  EXPECT_EQ(back.full, p.policy.full);
  // Another shape, a wrong format and broken JSON are refused with the file named.
  EXPECT_THROW(read_head_policy(path, shape(3, 6, 3, 16)), Error);
  std::ofstream(d.sub("bad.json")) << "{\"format\": \"other\"}";
  EXPECT_THROW(read_head_policy(d.sub("bad.json"), c), Error);
  std::ofstream(d.sub("broken.json")) << "{";
  try {
    read_head_policy(d.sub("broken.json"), c);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("broken.json"), std::string::npos);
  }
}

TEST(KvConditions, FullSpecGrammar) {
  const ModelConfig c = shape(3, 6, 2, 16);
  const analysis::ScoreMap s = tiny_scores();
  EXPECT_EQ(kv_full_heads("all", c, nullptr, 0).size(), 18u);
  EXPECT_TRUE(kv_full_heads("none", c, nullptr, 0).empty());
  EXPECT_EQ(kv_full_heads("top:2", c, &s, 0), (std::vector<HeadId>{{2, 0}, {2, 3}}));
  EXPECT_EQ(kv_full_heads("kv:2-1", c, nullptr, 0), (std::vector<HeadId>{{2, 3}, {2, 4}, {2, 5}}));
  EXPECT_EQ(kv_full_heads("heads:0-1", c, nullptr, 0), (std::vector<HeadId>{{0, 1}}));
  // random:K never draws a head with a score above 0.
  for (uint64_t seed = 0; seed < 5; ++seed)
    for (const auto& [l, h] : kv_full_heads("random:6", c, &s, seed)) {
      EXPECT_LT(l, 2);
      EXPECT_FALSE(l == 1 && h == 4);
    }
  EXPECT_THROW(kv_full_heads("top:2", c, nullptr, 0), Error);
  EXPECT_THROW(kv_full_heads("most", c, nullptr, 0), Error);
  EXPECT_THROW(make_kv_setting(0, 4, "top:2", c, &s, 0), Error);  // full heads without a window
}

TEST(KvConditions, RequestsExpand) {
  const ModelConfig c = shape(3, 6, 2, 16);
  const analysis::ScoreMap s = tiny_scores();
  KvRequest r;
  std::vector<KvSetting> v = kv_settings(r, c, &s);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_FALSE(v[0].policy.active());
  EXPECT_EQ(v[0].label, "");

  r.window = 32;
  r.full = "random:2";
  r.seeds = {0, 1, 2};
  v = kv_settings(r, c, &s);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[1].label, "kv W32 S4 full random:2 seed 1");
  EXPECT_EQ(v[1].full_kind, "random");

  KvRequest sw;
  sw.sweep_windows = {16, 32};
  sw.sweep_full = "top:0,2";
  sw.sweep_random = true;
  sw.seeds = {0, 1};
  v = kv_settings(sw, c, &s);
  // Per window: none, top:2, random:2 x 2 seeds.
  ASSERT_EQ(v.size(), 8u);
  EXPECT_EQ(v[0].label, "kv W16 S4 full none");
  EXPECT_EQ(v[1].label, "kv W16 S4 full top:2");
  EXPECT_EQ(v[4].label, "kv W32 S4 full none");
  sw.window = 8;
  EXPECT_THROW(kv_settings(sw, c, &s), Error);
  EXPECT_THROW(parse_window_list("16,0"), Error);
  EXPECT_EQ(parse_window_list("16,32,64"), (std::vector<int64_t>{16, 32, 64}));
}

TEST(KvConditions, SweepPointsAverageSeeds) {
  auto summary = [](const std::string& kind, int k, int64_t w, double kv, double score) {
    return json{{"kv_policy", {{"window", w}, {"full_kind", kind}, {"full_k", k}}},
                {"kv_kept_fraction", kv},
                {"query_kept_fraction", kv},
                {"mean_score", score}};
  };
  const std::vector<KvSweepPoint> pts = kv_sweep_points(
      {summary("none", 0, 32, 0.1, 10), summary("top", 2, 32, 0.4, 90), summary("random", 2, 32, 0.4, 20),
       summary("random", 2, 32, 0.4, 30), summary("none", 0, 16, 0.05, 5), json{{"mean_score", 99}}});
  ASSERT_EQ(pts.size(), 5u);
  EXPECT_EQ(pts[0].curve, "retrieval");
  EXPECT_DOUBLE_EQ(pts[1].mean_score, 25);
  EXPECT_EQ(pts[1].conditions, 2);
  EXPECT_EQ(pts[2].window, 16);  // "none" points sorted by KV kept
  EXPECT_DOUBLE_EQ(pts[3].kv_kept_pct, 10);
  EXPECT_EQ(pts[4].curve, "full");  // no policy: the reference point at 100%
  EXPECT_DOUBLE_EQ(pts[4].kv_kept_pct, 100);
  EXPECT_DOUBLE_EQ(pts[4].mean_score, 99);
  testing::MkdtempDir d("kvsweep");
  const auto written = write_kv_sweep(d.path.string(), pts, "test", "mean NIAH score");
  EXPECT_EQ(written.size(), 4u);
  for (const auto& f : written) EXPECT_TRUE(std::filesystem::exists(f)) << f;
}

}  // namespace
}  // namespace rhead

// Causal experiments: head selection (top-K, the random-K baseline over the model's real
// shape), mask settings and sweeps, the masked NIAH run with resume, and its figures.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "analysis/run_files.h"
#include "io/error.h"
#include "model/builtin.h"
#include "experiments/causal.h"
#include "model/heads.h"
#include "records/results.h"
#include "report/drawing.h"
#include "report/test_helpers.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using namespace rhead;
using nlohmann::json;

ModelConfig shape(int layers, int heads, int kv_heads) {
  ModelConfig c;
  c.n_layer = layers;
  c.n_head = heads;
  c.n_kv_head = kv_heads;
  return c;
}

analysis::ScoreMap score_map(int layers, int heads, const std::vector<std::pair<HeadId, double>>& scores) {
  json doc = json::object();
  for (int l = 0; l < layers; ++l)
    for (int h = 0; h < heads; ++h) doc[std::to_string(l) + "-" + std::to_string(h)] = json::array({0.0});
  for (const auto& [head, s] : scores) doc[head.key()] = json::array({s});
  analysis::ScoreMap m = analysis::score_map_from_reference_json(doc, "test scores");
  m.source = "test scores";
  return m;
}

// niah-tiny's detect scores (README): six layer-2 heads, everything else 0.
analysis::ScoreMap niah_tiny_scores() {
  return score_map(3, 6,
                   {{{2, 0}, 0.99}, {{2, 1}, 0.99}, {{2, 2}, 0.98}, {{2, 5}, 0.71}, {{2, 4}, 0.70}, {{2, 3}, 0.51}});
}

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& prefix) {
    path = fs::temp_directory_path() /
           (prefix + std::to_string(::getpid()) + "-" + std::to_string(reinterpret_cast<uintptr_t>(this)));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

TEST(MaskSettings, SweepSpecs) {
  const auto [kind, ks] = parse_sweep_spec("top:0,5,10");
  EXPECT_EQ(kind, SelectionKind::top);
  EXPECT_EQ(ks, (std::vector<int>{0, 5, 10}));
  EXPECT_EQ(parse_sweep_spec("random:1").first, SelectionKind::random);
  EXPECT_THROW(parse_sweep_spec("top:1,,2"), Error);
  EXPECT_THROW(parse_sweep_spec("bottom:1"), Error);
}

TEST(MaskSettings, SweepExpandsTopRandomAndSeeds) {
  const auto scores = niah_tiny_scores();
  const auto cfg = shape(3, 6, 2);
  MaskRequest req;
  req.sweep = "top:0,2,4";
  req.sweep_random = true;
  req.seeds = {1, 2};
  const auto settings = mask_settings(req, cfg, &scores);
  std::vector<std::string> labels;
  for (const auto& s : settings) labels.push_back(s.label);
  EXPECT_EQ(labels, (std::vector<std::string>{"none", "top:2", "top:4", "random:2 seed 1", "random:2 seed 2",
                                              "random:4 seed 1", "random:4 seed 2"}));
  EXPECT_TRUE(settings[0].mask.empty());
  EXPECT_EQ(settings[1].mask.count(), 2);
  EXPECT_TRUE(settings[1].mask.contains(2, 0) && settings[1].mask.contains(2, 1));
  EXPECT_NE(settings[3].heads, settings[4].heads);

  MaskRequest one;
  one.mask = "top:1";
  one.mode = MaskMode::zero;
  one.phase = MaskPhase::all;
  one.baseline = true;
  const auto two = mask_settings(one, cfg, &scores);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].label, "none");
  EXPECT_EQ(two[1].label, "top:1 [zero, all]");
  EXPECT_EQ(two[1].mask.mode, MaskMode::zero);
  EXPECT_EQ(two[1].mask.phase, MaskPhase::all);
}

TEST(MaskSettings, SweepJsonAveragesSeeds) {
  auto outcome = [](const std::string& kind, int k, uint64_t seed, double mean) {
    MaskOutcome o;
    o.label = kind + std::to_string(k) + "-" + std::to_string(seed);
    o.mask = {{"kind", kind}, {"k", k}, {"seed", seed}};
    o.mean_score = mean;
    return o;
  };
  const json j = sweep_json({outcome("none", 0, 0, 80), outcome("top", 2, 0, 10), outcome("top", 1, 0, 40),
                             outcome("random", 2, 1, 70), outcome("random", 2, 2, 60)});
  EXPECT_EQ(j["top"], json::parse("[[0, 80.0], [1, 40.0], [2, 10.0]]"));
  EXPECT_EQ(j["random"], json::parse("[[0, 80.0], [2, 65.0]]"));
  EXPECT_TRUE(sweep_json({outcome("none", 0, 0, 80)}).is_null());
}

// A results.jsonl of two masks on a 3 x 2 grid, written the way run_niah_causal writes it.
std::vector<NiahLine> synthetic_lines() {
  std::vector<NiahLine> lines;
  MaskSetting none, top;
  none.label = "none";
  top.label = "top:2";
  top.kind = SelectionKind::top;
  top.k = 2;
  top.heads = {{2, 0}, {2, 1}};
  top.mask = make_head_mask(top.heads, shape(3, 6, 2), MaskMode::uniform, MaskPhase::decode);
  int i = 0;
  for (const MaskSetting* m : {&none, &top})
    for (int64_t len : {300, 400, 500})
      for (int depth : {0, 100}) {
        TestResult r;
        r.test_id = "n0-L" + std::to_string(len) + "-d" + std::to_string(depth);
        r.length = len;
        r.depth = depth;
        r.answer = m == &none ? "star oil nest" : "red fish";
        r.rouge_recall = m == &none ? 100.0 : (i % 2 ? 33.3 : 0.0);
        // Masked tests: odd ones copied one span token, even ones copied from the haystack.
        StepCopies step;
        if (m == &none)
          step.span = 3;
        else if (i % 2)
          step.span = 1;
        else
          step.haystack = 2;
        r.steps = std::vector<StepCopies>{step};
        r.sink_mass_top_heads = m == &none ? 0.1 : 0.5;
        r.prompt_tokens = len;
        lines.push_back(niah_line(r, *m, "model.gguf", "The secret code is star oil nest.", 16, KvType::f32));
        ++i;
      }
  return lines;
}

TEST(NiahCausal, ResultLinesSummaryAndTaxonomyCounts) {
  const auto lines = synthetic_lines();
  const json l = to_json(lines.back());
  for (const char* key : {"model", "context_length", "depth_percent", "needle", "model_response", "score"})
    EXPECT_TRUE(l.contains(key)) << key;
  EXPECT_EQ(l["test_id"], "top:2|n0-L500-d100");
  EXPECT_EQ(l["mask_heads"], json::parse(R"(["2-0", "2-1"])"));
  EXPECT_FALSE(l.contains("head_scores"));  // keeps the directory readable as a niah run

  const NiahCausalSummary s = summarize_niah_lines(lines, true);
  ASSERT_EQ(s.masks.size(), 2u);
  EXPECT_EQ(s.masks[0].label, "none");
  EXPECT_DOUBLE_EQ(s.masks[0].mean_score, 100.0);
  EXPECT_EQ(s.masks[0].passed, 6);
  EXPECT_EQ(s.masks[1].label, "top:2");
  EXPECT_EQ(s.masks[1].passed, 0);
  EXPECT_EQ(s.masks[1].errors.at("incomplete"), 3);
  EXPECT_EQ(s.masks[1].errors.at("wrong_extraction"), 3);
  EXPECT_EQ(s.masks[1].errors.at("hallucination"), 0);
  EXPECT_NEAR(s.masks[1].sink_mass, 0.5, 1e-12);
  EXPECT_NEAR(s.masks[0].sink_mass_by_outcome.at("none"), 0.1, 1e-12);
  EXPECT_EQ(s.sweep["top"], json::parse("[[0, 100.0], [2, 16.65]]"));
  const json j = s.to_json();
  EXPECT_DOUBLE_EQ(j["mean_score"].get<double>(), 100.0);
  EXPECT_FALSE(j.contains("heads"));
  const std::string table = format_niah_summary(s);
  EXPECT_NE(table.find("top:2"), std::string::npos);
  EXPECT_NE(table.find("16.6"), std::string::npos);
}

// line -> NiahLine -> line gives the same text, for every field the writer sets.
TEST(NiahLineRecord, LineToStructToLineIsEqual) {
  std::vector<NiahLine> lines = synthetic_lines();
  NiahLine rich = lines.back();  // every optional field set, odd values
  rich.condition.mask_seed = 18446744073709551615ull;
  rich.condition.kv_policy = {{"window", 16}, {"sink", 4}, {"full_heads", {"1-0"}}};
  rich.condition.kv_cache = {{"kv_kept_fraction", 0.375}, {"query_kept_fraction", 0.25}};
  rich.observed.error = "needle span not found in the prompt";
  rich.observed.support_share = 0.5;
  rich.observed.sink_mass_by_head = {{"2-0", 0.75}};
  rich.span_begin = rich.span_end = -1;
  rich.seconds = 1.25;
  lines.push_back(rich);
  for (const NiahLine& l : lines) {
    const std::string text = to_json(l).dump();
    const NiahLine back = niah_line_from_json(json::parse(text), "results.jsonl:1");
    EXPECT_EQ(to_json(back).dump(), text);
  }
  const NiahLine back = niah_line_from_json(to_json(rich), "x");
  EXPECT_EQ(back.condition.mask_seed, 18446744073709551615ull);
  EXPECT_DOUBLE_EQ(back.condition.kv_kept_fraction(), 0.375);
  EXPECT_EQ(back.error_kind, ErrorKind::incomplete);  // the last masked test copied one span token
  EXPECT_EQ(back.copy_tally.span_steps, 1);
  ASSERT_TRUE(back.observed.steps);
  EXPECT_EQ(back.observed.steps->size(), 1u);

  // A line of the reference NIAH tool: its six fields, a float depth; the rest defaults.
  const NiahLine ref =
      niah_line_from_json(json::parse(R"({"model": "m", "context_length": 1000, "depth_percent": 33.3, "needle": "n",
                      "model_response": "r", "score": 80.0})"),
                          "ref.jsonl:1");
  EXPECT_EQ(ref.context_length, 1000);
  EXPECT_EQ(ref.depth_percent, 33);
  EXPECT_EQ(ref.condition.mask, "none");
  EXPECT_TRUE(ref.passed);
  EXPECT_EQ(ref.error_kind, ErrorKind::none);
}

// A field of the wrong type is one error naming the file and line, never a coerced value.
TEST(NiahLineRecord, StrictReaderNamesFileAndLine) {
  TempDir dir("rhead-niah-line-");
  const std::string path = (dir.path / "results.jsonl").string();
  const json good = to_json(synthetic_lines().front());
  auto expect_error_on_line_2 = [&](const json& bad, const std::string& fragment) {
    std::ofstream(path) << good.dump() << "\n" << bad.dump() << "\n";
    try {
      analysis::read_niah_results(path);
      ADD_FAILURE() << bad.dump() << " was accepted";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(path + ":2"), std::string::npos) << message;
      EXPECT_NE(message.find(fragment), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
  };
  auto expect_error = [&](const std::string& field, const json& value, const std::string& fragment) {
    json bad = good;
    bad[field] = value;
    expect_error_on_line_2(bad, fragment);
  };
  expect_error("context_length", "300", "'context_length' must be an integer");
  expect_error("context_length", 300.5, "'context_length' must be an integer");
  expect_error("score", true, "'score'");
  expect_error("error_kind", 3, "'error_kind'");
  expect_error("error_kind", "lost", "unknown error kind 'lost'");
  expect_error("mask_k", "2", "'mask_k'");
  expect_error("mask_heads", json::array({1}), "'mask_heads'");
  expect_error("passed", 1, "'passed'");
  expect_error("span", json::array({1}), "'span'");
  expect_error("copy_tally", json::object(), "'content_steps'");
  expect_error("kv_cache", 1, "'kv_cache'");
  json missing = good;
  missing.erase("score");
  expect_error_on_line_2(missing, "missing field 'score'");
}

TEST(NiahCausal, HeatmapsAndSweepPlotAreValidPngAndSvg) {
  TempDir dir("rhead-causal-fig-");
  const std::string d = dir.path.string();
  std::string text;
  for (const auto& l : synthetic_lines()) text += to_json(l).dump() + "\n";
  std::ofstream(d + "/results.jsonl") << text;
  std::ofstream(d + "/sweep.json") << summarize_niah_lines(synthetic_lines(), true).sweep.dump();
  const auto written = write_niah_figures(d, "niah-tiny");
  EXPECT_EQ(written.size(), 6u);  // two heatmaps and the sweep, each PNG + SVG
  for (const std::string stem : {"heatmap_none", "heatmap_top_2", "sweep"}) {
    const std::string png = d + "/" + stem + ".png", svg = d + "/" + stem + ".svg";
    ASSERT_TRUE(fs::exists(png)) << png;
    const report::RgbImage img = report::read_png(png);
    EXPECT_GE(img.width, 300);
    EXPECT_GE(img.height, 200);
    const auto parsed = rhead::testing::parse_svg(svg);
    ASSERT_EQ(parsed.exit_code, 0) << parsed.output;
    // "svg <texts> <width> <height>": the SVG has the PNG's size.
    EXPECT_EQ(parsed.output.rfind("svg ", 0), 0u) << parsed.output;
    EXPECT_NE(parsed.output.find(" " + std::to_string(img.width) + " " + std::to_string(img.height)), std::string::npos)
        << parsed.output;
  }
  std::ifstream in(d + "/heatmap_top_2.svg");
  const std::string svg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(svg.find("mean score 16.6"), std::string::npos);  // the mean is in the title
}

NiahRunConfig induction_config() {
  NiahRunConfig c;
  for (const auto& n : induction_needles()) c.needle_sets.push_back({n, ""});
  c.needle_sets.resize(1);
  c.grid.lengths = {400, 600};
  c.grid.depths = {0, 50, 100};
  c.format.base_template = induction_prompt_template();
  return c;
}

TEST(NiahCausal, InductionHeadsAreCausalAndRunsResume) {
  const LoadedModel lm = load_builtin_model("induction");
  const ModelConfig& cfg = lm.model->config;
  // The computed model's copy heads are 1-1 and 1-2.
  const auto scores = score_map(cfg.n_layer, cfg.n_head, {{{1, 1}, 0.9}, {{1, 2}, 0.8}});
  MaskRequest req;
  req.sweep = "top:0,2";
  const auto masks = mask_settings(req, cfg, &scores);
  ASSERT_EQ(masks.size(), 2u);
  TempDir dir("rhead-causal-run-");
  NiahCausalOptions o;
  o.output_dir = dir.path.string();
  o.settings = {{"fingerprint", {{"model", "builtin:induction"}}}};
  o.masks = masks;
  o.sweep = true;
  o.sink_heads = sink_heads_for(&scores, 5);
  ASSERT_EQ(o.sink_heads.size(), 2u);
  int ran = 0;
  o.progress = [&](int, int, const std::string&, const TestResult&, double) { ++ran; };
  const NiahCausalSummary s = run_niah_causal(lm, {}, induction_config(), o);
  EXPECT_EQ(ran, 12);
  ASSERT_EQ(s.masks.size(), 2u);
  EXPECT_GT(s.masks[0].mean_score, 90.0);  // unmasked: the copy heads retrieve the needle
  EXPECT_LT(s.masks[1].mean_score, 50.0);  // both masked: retrieval is gone
  int errors = 0;
  for (const auto& [kind, n] : s.masks[1].errors) errors += n;
  EXPECT_EQ(errors, s.masks[1].tests - s.masks[1].passed);
  EXPECT_GE(s.masks[0].sink_mass, 0.0);
  for (const char* f : {"results.jsonl", "summary.json", "sweep.json", "heatmap_none.png", "heatmap_top_2.svg",
                        "sweep.png", "sweep.svg"})
    EXPECT_TRUE(fs::exists(dir.path / f)) << f;
  const auto lines = read_results_lines((dir.path / "results.jsonl").string(), false);
  ASSERT_EQ(lines.size(), 12u);
  EXPECT_TRUE(lines.front().contains("steps"));
  EXPECT_FALSE(lines.front()["steps"].empty());

  // Rerun: nothing left to do. Another mask under an existing label is refused.
  ran = 0;
  run_niah_causal(lm, {}, induction_config(), o);
  EXPECT_EQ(ran, 0);
  NiahCausalOptions other = o;
  other.masks[1].heads = {{0, 1}, {1, 1}};
  EXPECT_THROW(run_niah_causal(lm, {}, induction_config(), other), Error);
  // Shards split the (mask, test) list and merge back to the whole run.
  TempDir shards("rhead-causal-shards-");
  for (int i = 0; i < 2; ++i) {
    NiahCausalOptions sh = o;
    sh.output_dir = (shards.path / ("s" + std::to_string(i))).string();
    sh.shard = {i, 2};
    ran = 0;
    run_niah_causal(lm, {}, induction_config(), sh);
    EXPECT_EQ(ran, 6);
  }
  const NiahCausalSummary merged =
      merge_niah_runs({(shards.path / "s0").string(), (shards.path / "s1").string()}, (shards.path / "all").string());
  ASSERT_EQ(merged.masks.size(), 2u);
  EXPECT_DOUBLE_EQ(merged.masks[0].mean_score, s.masks[0].mean_score);
  EXPECT_DOUBLE_EQ(merged.masks[1].mean_score, s.masks[1].mean_score);
}

TEST(NiahCausal, CliRunsOnTheBuiltinModel) {
  TempDir dir("rhead-causal-cli-");
  const auto r = rhead::testing::run_with_stderr(
      rhead::testing::rhead_binary() +
      " niah -m builtin:induction --lengths 400:600:2 --depths 2 --mask heads:1-1,1-2 -q -o " +
      rhead::testing::quoted(dir.path.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("heads:1-1,1-2"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(dir.path / "heatmap_heads_1-1_1-2.png")) << r.output;
  // A larger grid in the same folder is refused, and left as it was, unless asked for with --grow;
  // then only the new tests run.
  const auto count_lines = [&] { return read_results_lines((dir.path / "results.jsonl").string(), false).size(); };
  const std::size_t before = count_lines();
  const std::string grown = rhead::testing::rhead_binary() +
                            " niah -m builtin:induction --lengths 400:600:2 --depths 3 --mask heads:1-1,1-2 -q -o " +
                            rhead::testing::quoted(dir.path.string());
  const auto refused = rhead::testing::run_with_stderr(grown);
  EXPECT_NE(refused.exit_code, 0) << refused.output;
  EXPECT_NE(refused.output.find("grid of keys"), std::string::npos) << refused.output;
  EXPECT_EQ(count_lines(), before);
  const auto grew = rhead::testing::run_with_stderr(grown + " --grow");
  ASSERT_EQ(grew.exit_code, 0) << grew.output;
  EXPECT_EQ(count_lines(), before / 2 * 3);  // two depths per length before, three now
  const auto help = rhead::testing::run_with_stderr(rhead::testing::rhead_binary() + " niah --help");
  EXPECT_NE(help.output.find("Default uniform"), std::string::npos);
  EXPECT_NE(help.output.find("Default decode"), std::string::npos);
}

}  // namespace

// Head masks: the spec parser, and the invariants every mode and phase must keep.
//   - an empty mask is no mask (bit-identical logits);
//   - uniform = the mean of V over the causal prefix, computed here from the KV cache;
//   - zero = the same model with the head's W_o columns zeroed;
//   - a decode-phase mask leaves the prefill's KV cache bit-identical;
//   - mean mode uses the recorded means, and those are the heads' mean outputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>

#include "io/error.h"
#include "model/generate.h"
#include "model/heads.h"
#include "model/loader.h"
#include "model/session.h"
#include "ops/quant.h"
#include "test_probes_naive.h"
#include "test_support.h"

namespace rhead {
namespace {

const std::string kNiah = "models/niah-tiny/niah-tiny-f32.gguf";
const std::string kStories = "models/stories260K/stories260K.gguf";
const char kPrompt[] =
    "The secret code of the wall is star oil nest. Most if not all the things we describe as addictive are."
    "\nQuestion: What is the secret code of the wall?\nAnswer:";

ModelConfig shape(int layers, int heads, int kv) {
  ModelConfig c;
  c.n_layer = layers;
  c.n_head = heads;
  c.n_kv_head = kv;
  c.head_dim = 16;
  return c;
}

// ---- the spec parser ----

TEST(MaskSpec, HeadsAndKvGroups) {
  const ModelConfig c = shape(3, 6, 2);  // niah-tiny's shape: 3 query heads per KV group
  HeadMask m = parse_head_mask("heads:2-5,0-0", c);
  EXPECT_EQ(m.n_layer, 3);
  EXPECT_EQ(m.n_head, 6);
  EXPECT_EQ(m.count(), 2);
  EXPECT_TRUE(m.contains(2, 5));
  EXPECT_TRUE(m.contains(0, 0));
  EXPECT_EQ(m.mode, MaskMode::uniform);
  EXPECT_EQ(m.phase, MaskPhase::decode);

  m = parse_head_mask("kv:1-1", c);
  EXPECT_EQ(m.heads(), (std::vector<HeadId>{{1, 3}, {1, 4}, {1, 5}}));
  m = parse_head_mask("kv:0-0,2-1", c);
  EXPECT_EQ(m.heads(), (std::vector<HeadId>{{0, 0}, {0, 1}, {0, 2}, {2, 3}, {2, 4}, {2, 5}}));
  EXPECT_TRUE(parse_head_mask("none", c).empty());
  // Without GQA a KV group is one query head.
  EXPECT_EQ(parse_head_mask("kv:0-3", shape(1, 4, 4)).heads(), (std::vector<HeadId>{{0, 3}}));
}

TEST(MaskSpec, BadSpecsGiveOneLineErrors) {
  const ModelConfig c = shape(3, 6, 2);
  const std::pair<const char*, const char*> cases[] = {
      {"heads:3-0", "layer 3"},
      {"heads:0-6", "head 6"},
      {"kv:0-2", "KV group 2"},
      {"heads:1", "'1'"},
      {"heads:a-b", "'a-b'"},
      {"heads:", "no heads"},
      {"heads:1-2,", "''"},
      {"heads:-1-2", "'-1-2'"},
      {"heads:1-2-3", "'1-2-3'"},
      {"top5", "KIND:ARGS"},
      {"layers:1-2", "unknown kind 'layers'"},
      {"", "KIND:ARGS"},
      {"heads:1- 2", "'1- 2'"},
  };
  for (const auto& [spec, needle] : cases) {
    try {
      parse_head_mask(spec, c);
      ADD_FAILURE() << "accepted '" << spec << "'";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(needle), std::string::npos) << spec << " -> " << msg;
      EXPECT_NE(msg.find(std::string("'") + spec + "'"), std::string::npos) << "names the spec: " << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
}

// ---- helpers ----

struct Loaded {
  LoadedModel lm;
  std::vector<int32_t> prompt;
};

Loaded load(const std::string& rel) {
  Loaded l;
  l.lm = load_model(testing::shared_path(rel));
  l.prompt = l.lm.tokenizer->encode(kPrompt, true);
  return l;
}

SessionOptions opts(int64_t chunk = 256) {
  SessionOptions so;
  so.n_ctx = 256;
  so.prefill_chunk = chunk;
  return so;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Greedy run: generated tokens and every step's logits.
struct GenRun {
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> logits;
};

GenRun generate(std::shared_ptr<const Model> model, const std::vector<int32_t>& prompt, const HeadMask* mask, int n,
                SessionOptions so = opts()) {
  Session s(std::move(model), so);
  GenRun r;
  GreedyOptions go;
  go.max_new_tokens = n;
  go.mask = mask;
  go.on_token = [&](const DecodeStep& st) {
    r.logits.push_back(*st.logits);
    return true;
  };
  r.tokens = generate_greedy(s, prompt, go).tokens;
  return r;
}

std::vector<float> prefill_logits(std::shared_ptr<const Model> model, const std::vector<int32_t>& prompt,
                                  const HeadMask* mask, bool decode, int64_t chunk) {
  Session s(std::move(model), opts(chunk));
  ForwardOptions fo;
  fo.mask = mask;
  fo.decode = decode;
  fo.all_logits = true;
  return s.forward(prompt, fo);
}

// ---- empty mask ----

TEST(MaskInvariants, EmptyMaskIsNoMask) {
  RHEAD_REQUIRE_FILE(testing::shared_path(kStories));
  Loaded l = load(kStories);
  const ModelConfig& c = l.lm.model->config;
  const std::vector<float> base = prefill_logits(l.lm.model, l.prompt, nullptr, false, 7);
  const GenRun base_run = generate(l.lm.model, l.prompt, nullptr, 20);
  for (MaskMode mode : {MaskMode::uniform, MaskMode::zero, MaskMode::mean})
    for (MaskPhase phase : {MaskPhase::decode, MaskPhase::all}) {
      SCOPED_TRACE(std::string(mask_mode_name(mode)) + "/" + mask_phase_name(phase));
      HeadMask empty(c.n_layer, c.n_head);
      empty.mode = mode;
      empty.phase = phase;
      EXPECT_TRUE(same_bits(prefill_logits(l.lm.model, l.prompt, &empty, false, 7), base));
      EXPECT_TRUE(same_bits(prefill_logits(l.lm.model, l.prompt, &empty, true, 7), base));
      const GenRun r = generate(l.lm.model, l.prompt, &empty, 20);
      EXPECT_EQ(r.tokens, base_run.tokens);
      ASSERT_EQ(r.logits.size(), base_run.logits.size());
      for (size_t i = 0; i < r.logits.size(); ++i) EXPECT_TRUE(same_bits(r.logits[i], base_run.logits[i])) << i;
    }
  // A non-empty decode-phase mask does nothing outside decode steps.
  HeadMask m = parse_head_mask("heads:0-0,4-1", c);
  EXPECT_TRUE(same_bits(prefill_logits(l.lm.model, l.prompt, &m, false, 7), base));
  EXPECT_FALSE(same_bits(prefill_logits(l.lm.model, l.prompt, &m, true, 7), base));
}

// ---- uniform = mean of V ----

// At one decode step, head (l, h) masked uniform gives the same logits as the head's output
// replaced (mean mode) by the mean of its V rows over positions 0..p, computed here from the
// session's own f16 cache.
TEST(MaskInvariants, UniformIsMeanOfValuesOverThePrefix) {
  RHEAD_REQUIRE_FILE(testing::shared_path(kNiah));
  Loaded l = load(kNiah);
  const ModelConfig& c = l.lm.model->config;
  const int64_t n = static_cast<int64_t>(l.prompt.size());
  const std::span<const int32_t> prefix = std::span<const int32_t>(l.prompt).first(n - 1);
  const std::span<const int32_t> last = std::span<const int32_t>(l.prompt).last(1);
  for (auto [layer, head] : {std::pair{0, 1}, std::pair{2, 4}}) {
    SCOPED_TRACE("head " + std::to_string(layer) + "-" + std::to_string(head));
    HeadMask uni(c.n_layer, c.n_head);
    uni.add(layer, head);
    ForwardOptions dec;
    dec.decode = true;

    Session plain(l.lm.model, opts());
    plain.forward(prefix);
    const std::vector<float> lp = plain.forward(last, dec);

    Session su(l.lm.model, opts());
    su.forward(prefix);
    dec.mask = &uni;
    const std::vector<float> lu = su.forward(last, dec);

    // Mean of V over 0..n-1 for the head's KV group, from the cache (f16), in double.
    const int g = head / c.group_size();
    const auto* v =
        static_cast<const uint16_t*>(su.v_cache(layer)) + static_cast<size_t>(g) * su.capacity() * c.head_dim;
    HeadMask mean = uni;
    mean.mode = MaskMode::mean;
    mean.means.assign(static_cast<size_t>(c.n_layer) * c.n_head * c.head_dim, 0.0f);
    for (int i = 0; i < c.head_dim; ++i) {
      double s = 0;
      for (int64_t j = 0; j < n; ++j) s += f16_to_f32(v[j * c.head_dim + i]);
      mean.means[(static_cast<size_t>(layer) * c.n_head + head) * c.head_dim + i] = static_cast<float>(s / n);
    }
    Session sm(l.lm.model, opts());
    sm.forward(prefix);
    dec.mask = &mean;
    const std::vector<float> lm = sm.forward(last, dec);

    double diff_mean = 0, diff_plain = 0;
    for (size_t i = 0; i < lu.size(); ++i) {
      diff_mean = std::max(diff_mean, static_cast<double>(std::abs(lu[i] - lm[i])));
      diff_plain = std::max(diff_plain, static_cast<double>(std::abs(lu[i] - lp[i])));
    }
    EXPECT_LT(diff_mean, 1e-4);
    EXPECT_GT(diff_plain, 1e-2) << "the mask should change the logits";
  }
}

// ---- zero = W_o columns zeroed ----

// A copy of `model` whose W_o has the columns of the given heads zeroed (dequantized to F32).
std::shared_ptr<const Model> without_heads(const Model& model, const std::vector<std::pair<int, int>>& heads) {
  auto copy = std::make_shared<Model>(model);
  const int hd = model.config.head_dim;
  for (int l = 0; l < model.config.n_layer; ++l) {
    bool touched = false;
    for (auto [hl, hh] : heads) touched |= hl == l;
    if (!touched) continue;
    const Weight& wo = model.layers[l].wo;
    auto buf = std::make_shared<std::vector<float>>(static_cast<size_t>(wo.rows * wo.cols));
    for (int64_t r = 0; r < wo.rows; ++r) dequantize_row(wo.type, wo.row(r), buf->data() + r * wo.cols, wo.cols);
    for (auto [hl, hh] : heads)
      if (hl == l)
        for (int64_t r = 0; r < wo.rows; ++r)
          for (int i = 0; i < hd; ++i) (*buf)[r * wo.cols + hh * hd + i] = 0.0f;
    copy->layers[l].wo = Weight{DType::F32, buf->data(), wo.rows, wo.cols};
    copy->keep_alive.push_back(buf);
  }
  return copy;
}

TEST(MaskInvariants, ZeroModeEqualsZeroedOutputColumns) {
  for (const std::string& rel : {kNiah, kStories}) {
    SCOPED_TRACE(rel);
    RHEAD_REQUIRE_FILE(testing::shared_path(rel));
    Loaded l = load(rel);
    const ModelConfig& c = l.lm.model->config;
    ASSERT_EQ(l.lm.model->layers[0].wo.type, DType::F32);
    const std::vector<std::pair<int, int>> heads = {{0, 2}, {c.n_layer - 1, c.n_head - 1}, {1, 0}};
    HeadMask zero(c.n_layer, c.n_head);
    for (auto [hl, hh] : heads) zero.add(hl, hh);
    zero.mode = MaskMode::zero;
    zero.phase = MaskPhase::all;
    auto edited = without_heads(*l.lm.model, heads);
    for (int64_t chunk : {1, 7, 256}) {
      EXPECT_TRUE(same_bits(prefill_logits(l.lm.model, l.prompt, &zero, false, chunk),
                            prefill_logits(edited, l.prompt, nullptr, false, chunk)))
          << "chunk " << chunk;
    }
    const GenRun a = generate(l.lm.model, l.prompt, &zero, 20), b = generate(edited, l.prompt, nullptr, 20);
    EXPECT_EQ(a.tokens, b.tokens);
    ASSERT_EQ(a.logits.size(), b.logits.size());
    for (size_t i = 0; i < a.logits.size(); ++i) EXPECT_TRUE(same_bits(a.logits[i], b.logits[i])) << "step " << i;
    // And the edit matters: the unmasked model differs.
    EXPECT_FALSE(same_bits(prefill_logits(l.lm.model, l.prompt, nullptr, false, 7),
                           prefill_logits(edited, l.prompt, nullptr, false, 7)));
  }
}

// ---- decode phase leaves the prefill cache alone ----

TEST(MaskInvariants, DecodePhaseMaskKeepsPrefillCacheBitIdentical) {
  RHEAD_REQUIRE_FILE(testing::shared_path(kNiah));
  Loaded l = load(kNiah);
  const ModelConfig& c = l.lm.model->config;
  const int64_t n_prefill = static_cast<int64_t>(l.prompt.size()) - 1;
  constexpr int kSteps = 10;
  auto run = [&](const HeadMask* mask, Session& s) {
    GreedyOptions go;
    go.max_new_tokens = kSteps;
    go.mask = mask;
    return generate_greedy(s, l.prompt, go).tokens;
  };
  // Bytes of rows [from, to) of every KV head of a layer's K or V cache.
  auto rows = [&](const Session& s, int layer, bool values, int64_t from, int64_t to) {
    const auto* base = static_cast<const uint8_t*>(values ? s.v_cache(layer) : s.k_cache(layer));
    const size_t row = static_cast<size_t>(c.head_dim) * 2;
    std::vector<uint8_t> out;
    for (int g = 0; g < c.n_kv_head; ++g) {
      const uint8_t* p = base + (static_cast<size_t>(g) * s.capacity() + from) * row;
      out.insert(out.end(), p, p + (to - from) * row);
    }
    return out;
  };
  Session plain(l.lm.model, opts(7));
  run(nullptr, plain);
  for (MaskMode mode : {MaskMode::uniform, MaskMode::zero}) {
    SCOPED_TRACE(mask_mode_name(mode));
    HeadMask mask = parse_head_mask("heads:0-1,1-3,2-0", c);
    mask.mode = mode;
    Session masked(l.lm.model, opts(7));
    run(&mask, masked);
    bool decode_rows_differ = false;
    for (int layer = 0; layer < c.n_layer; ++layer)
      for (bool values : {false, true}) {
        EXPECT_EQ(rows(plain, layer, values, 0, n_prefill), rows(masked, layer, values, 0, n_prefill))
            << "layer " << layer << (values ? " V" : " K");
        decode_rows_differ |= rows(plain, layer, values, n_prefill + 1, n_prefill + kSteps) !=
                              rows(masked, layer, values, n_prefill + 1, n_prefill + kSteps);
      }
    EXPECT_TRUE(decode_rows_differ) << "the mask should change the decode steps";

    // The same mask in phase all does change the prefill cache of the later layers.
    mask.phase = MaskPhase::all;
    Session all(l.lm.model, opts(7));
    run(&mask, all);
    EXPECT_EQ(rows(plain, 0, true, 0, n_prefill), rows(all, 0, true, 0, n_prefill));  // before any masked head
    EXPECT_NE(rows(plain, 1, false, 0, n_prefill), rows(all, 1, false, 0, n_prefill));
    EXPECT_NE(rows(plain, 2, true, 0, n_prefill), rows(all, 2, true, 0, n_prefill));
  }
}

// Heads that are not masked, and every head of earlier layers, report exactly what they
// report without the mask; a uniform-masked head reports position 0 with weight 1/n.
TEST(MaskInvariants, MaskLeavesOtherProbesAlone) {
  RHEAD_REQUIRE_FILE(testing::shared_path(kNiah));
  Loaded l = load(kNiah);
  const ModelConfig& c = l.lm.model->config;
  const int64_t n = static_cast<int64_t>(l.prompt.size());
  HeadMask mask(c.n_layer, c.n_head);
  mask.add(1, 2);
  ProbeRequest req;
  req.sink = true;
  auto first_step = [&](const HeadMask* m) {
    Session s(l.lm.model, opts());
    ProbeRecord rec;
    GreedyOptions go;
    go.max_new_tokens = 1;
    go.mask = m;
    go.probes = &req;
    go.on_token = [&](const DecodeStep& st) {
      rec = *st.probes;
      return true;
    };
    generate_greedy(s, l.prompt, go);
    return rec;
  };
  const ProbeRecord a = first_step(nullptr), b = first_step(&mask);
  for (int layer = 0; layer <= 1; ++layer)
    for (int h = 0; h < c.n_head; ++h) {
      const int64_t i = a.index(0, layer, h);
      if (layer == 1 && h == 2) {
        EXPECT_EQ(b.argmax[i], 0);
        EXPECT_FLOAT_EQ(b.argmax_weight[i], 1.0f / static_cast<float>(n));
        EXPECT_FLOAT_EQ(b.sink_mass[i], 1.0f / static_cast<float>(n));
        continue;
      }
      EXPECT_EQ(a.argmax[i], b.argmax[i]) << layer << "-" << h;
      EXPECT_EQ(a.argmax_weight[i], b.argmax_weight[i]) << layer << "-" << h;
    }
}

// A mask built for another model's shape is refused, not read out of bounds.
TEST(MaskInvariants, MaskOfAnotherShapeIsAnError) {
  RHEAD_REQUIRE_FILE(testing::shared_path(kStories));
  Loaded l = load(kStories);  // 5 layers x 8 heads
  HeadMask other(3, 6);       // niah-tiny's shape
  other.add(2, 5);
  other.phase = MaskPhase::all;
  Session s(l.lm.model, opts());
  try {
    s.forward(l.prompt, ForwardOptions{.mask = &other});
    ADD_FAILURE() << "a 3 x 6 mask was accepted by a 5 x 8 model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("3 layers x 6 heads"), std::string::npos) << e.what();
  }
  EXPECT_EQ(s.n_past(), 0);
  // A default-constructed (empty) mask is no mask, whatever its shape.
  HeadMask none;
  EXPECT_NO_THROW(s.forward(l.prompt, ForwardOptions{.mask = &none}));
}

// ---- mean mode ----

// The calibration run records each head's mean output: compare with the naive forward pass.
TEST(MaskInvariants, RecordedMeansAreTheHeadsMeanOutputs) {
  RHEAD_REQUIRE_FILE(testing::shared_path(kNiah));
  Loaded l = load(kNiah);
  const ModelConfig& c = l.lm.model->config;
  const int64_t n = static_cast<int64_t>(l.prompt.size());
  const std::vector<float> means = record_head_means(l.lm.model, l.prompt, opts(7));
  ASSERT_EQ(means.size(), static_cast<size_t>(c.n_layer) * c.n_head * c.head_dim);
  const testing::NaiveRun naive = testing::naive_forward(*l.lm.model, l.prompt, true);
  double max_err = 0, max_abs = 0;
  for (int layer = 0; layer < c.n_layer; ++layer)
    for (int h = 0; h < c.n_head; ++h)
      for (int i = 0; i < c.head_dim; ++i) {
        double s = 0;
        for (int64_t t = 0; t < n; ++t) s += naive.out(layer, t, h, i);
        const double expect = s / n;
        const float got = means[(static_cast<size_t>(layer) * c.n_head + h) * c.head_dim + i];
        max_err = std::max(max_err, std::abs(got - expect));
        max_abs = std::max(max_abs, std::abs(expect));
      }
  EXPECT_LT(max_err, 1e-3) << "largest mean " << max_abs;
  EXPECT_GT(max_abs, 0.05);
  // The chunking of the calibration run does not matter (beyond float rounding).
  const std::vector<float> other = record_head_means(l.lm.model, l.prompt, opts(256));
  for (size_t i = 0; i < means.size(); ++i) EXPECT_NEAR(means[i], other[i], 1e-3);
}

TEST(MaskInvariants, MeanModeUsesTheGivenMeans) {
  RHEAD_REQUIRE_FILE(testing::shared_path(kNiah));
  Loaded l = load(kNiah);
  const ModelConfig& c = l.lm.model->config;
  HeadMask mask = parse_head_mask("heads:2-0,2-3,1-1", c);
  mask.phase = MaskPhase::all;

  // Zero means: exactly the zero mode.
  HeadMask zero = mask;
  zero.mode = MaskMode::zero;
  HeadMask mean0 = mask;
  mean0.mode = MaskMode::mean;
  mean0.means.assign(static_cast<size_t>(c.n_layer) * c.n_head * c.head_dim, 0.0f);
  EXPECT_TRUE(same_bits(prefill_logits(l.lm.model, l.prompt, &mean0, false, 7),
                        prefill_logits(l.lm.model, l.prompt, &zero, false, 7)));

  // Recorded means: a different result from zero mode, and the same result for the same means.
  HeadMask mean = mean0;
  mean.means = record_head_means(l.lm.model, l.prompt, opts());
  const std::vector<float> a = prefill_logits(l.lm.model, l.prompt, &mean, false, 7);
  EXPECT_FALSE(same_bits(a, prefill_logits(l.lm.model, l.prompt, &zero, false, 7)));
  EXPECT_TRUE(same_bits(a, prefill_logits(l.lm.model, l.prompt, &mean, false, 7)));
  // Means of heads outside the mask are never read.
  HeadMask noisy = mean;
  for (int layer = 0; layer < c.n_layer; ++layer)
    for (int h = 0; h < c.n_head; ++h)
      if (!mask.contains(layer, h))
        for (int i = 0; i < c.head_dim; ++i)
          noisy.means[(static_cast<size_t>(layer) * c.n_head + h) * c.head_dim + i] = 1e3f;
  EXPECT_TRUE(same_bits(a, prefill_logits(l.lm.model, l.prompt, &noisy, false, 7)));

  // No means recorded: an error, not silent zeros.
  HeadMask missing = mask;
  missing.mode = MaskMode::mean;
  EXPECT_THROW(prefill_logits(l.lm.model, l.prompt, &missing, false, 7), Error);
  // ... before any work: the session is left as it was.
  Session s(l.lm.model, opts());
  EXPECT_THROW(s.forward(l.prompt, ForwardOptions{.mask = &missing}), Error);
  EXPECT_EQ(s.n_past(), 0);
}

}  // namespace
}  // namespace rhead

// builtin:induction — a two-layer Llama whose weights are computed, not trained:
//   layer 0, head 1: a previous-token head. Its query and key are constants rotated by RoPE
//     so that the score peaks at key position i-1; it writes the previous token's code into
//     the residual stream's "prev" block.
//   layer 1, heads 1 and 2 (one per KV group): induction heads. The query is the current
//     token's code, the key the "prev" block: the head attends to the position right after
//     an earlier occurrence of the current token and copies that token (its value) into the
//     "out" block, which the output head reads.
// Every other head has zero query, key, value and output weights, and the MLPs are zero.
//
// Residual stream layout (n_embd = 1 + 3 * kCode):
//   [0]                     constant 1 (gives the positional head a token-independent query)
//   [1, 1+kCode)            cur:  code of the current token
//   [1+kCode, 1+2kCode)     prev: code of the previous token (written by layer 0)
//   [1+2kCode, 1+3kCode)    out:  code of the predicted token (written by layer 1)
// Token codes are random ±1/sqrt(kCode) vectors: near-orthogonal, so matches stand out.
// Head layout (head_dim = 2 * (kPosPairs + kCodePairs), half-split RoPE pairs):
//   pairs [0, kPosPairs) rotate at chosen high frequencies (positional kernel);
//   pairs [kPosPairs, ...) do not rotate (content matching is position-independent).
#include "model/builtin.h"

#include <cmath>
#include <deque>
#include <set>
#include <nlohmann/json.hpp>

#include "io/builtin_data.h"
#include "io/error.h"
#include "io/gguf.h"

namespace rhead {
namespace {

constexpr int kCode = 64;              // dimension of a token code
constexpr int kPosPairs = 24;          // RoPE pairs of the positional kernel
constexpr int kCodePairs = kCode / 2;  // non-rotating pairs holding a code
constexpr int kHeadDim = 2 * (kPosPairs + kCodePairs);
constexpr int kHalf = kHeadDim / 2;
constexpr int kEmbd = 1 + 3 * kCode;
constexpr int kHeads = 4, kKvHeads = 2, kLayers = 2, kFF = 16, kCtx = 2048;
constexpr int kCur = 1, kPrev = 1 + kCode, kOut = 1 + 2 * kCode;
constexpr float kPosGain = 24.0f;     // previous-token head query scale
constexpr float kMatchGain = 500.0f;  // induction head query scale

// Frequencies of the positional pairs: drawn from a fixed 64-bit LCG (seed 42), chosen
// because the kernel sum_k cos(d * theta_k) then peaks at d = 0 (24) and stays below 11
// for every other d in [-1, 8192) — a margin the scales above turn into one-hot attention.
std::vector<double> positional_frequencies() {
  uint64_t x = 42;
  std::vector<double> th(kPosPairs);
  for (auto& t : th) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    t = 0.3 + 2.8 * (static_cast<double>(x >> 11) * 0x1.0p-53);
  }
  return th;
}

// Vocabulary in SentencePiece form: specials, 256 byte tokens, single characters, and
// every prefix of "▁word" for each lexicon word, so BPE merges build whole words.
GGUFFile vocabulary_metadata() {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int> types = {2, 3, 3};
  char buf[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    tokens.push_back(buf);
    types.push_back(6);
  }
  std::set<std::string> seen(tokens.begin(), tokens.end());
  auto add = [&](const std::string& t) {
    if (seen.insert(t).second) {
      tokens.push_back(t);
      types.push_back(1);
    }
  };
  const std::string space = "\xE2\x96\x81";  // ▁
  add(space);
  for (char c = 32; c < 127; ++c)
    if (c != ' ') add(std::string(1, c));
  for (const auto& w : builtin_lexicon()) {
    const std::string piece = space + w;
    for (size_t n = space.size() + 1; n <= piece.size(); ++n) add(piece.substr(0, n));
  }
  std::vector<float> scores(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) scores[i] = static_cast<float>(tokens[i].size());
  GGUFFile g;
  g.source = "builtin:induction";
  g.metadata["tokenizer.ggml.model"] = "llama";
  g.metadata["tokenizer.ggml.tokens"] = tokens;
  g.metadata["tokenizer.ggml.scores"] = scores;
  g.metadata["tokenizer.ggml.token_type"] = types;
  g.metadata["tokenizer.ggml.bos_token_id"] = 1;
  g.metadata["tokenizer.ggml.eos_token_id"] = 2;
  g.metadata["tokenizer.ggml.unknown_token_id"] = 0;
  g.metadata["tokenizer.ggml.add_bos_token"] = true;
  return g;
}

struct OwnedMatrix {
  std::vector<float> data;
  int64_t rows, cols;
  OwnedMatrix(int64_t r, int64_t c) : data(static_cast<size_t>(r * c), 0.0f), rows(r), cols(c) {}
  float& at(int64_t r, int64_t c) { return data[static_cast<size_t>(r * cols + c)]; }
};

}  // namespace

LoadedModel load_builtin_model(const std::string& name) {
  if (name != "induction") fail("builtin:" + name, "unknown built-in model (available: builtin:induction)");
  auto tokenizer = std::make_shared<Tokenizer>(Tokenizer::from_gguf(vocabulary_metadata()));
  const int n_vocab = tokenizer->n_vocab();

  auto m = std::make_shared<Model>();
  ModelConfig& c = m->config;
  c.family = "llama";
  c.architecture = "llama";
  c.n_layer = kLayers;
  c.n_embd = kEmbd;
  c.n_ff = kFF;
  c.n_head = kHeads;
  c.n_kv_head = kKvHeads;
  c.head_dim = kHeadDim;
  c.n_vocab = n_vocab;
  c.n_ctx_train = kCtx;
  c.rms_eps = 1e-6f;
  c.rope_theta = 10000.0f;
  c.rope_pairing = RopePairing::half;
  m->source = "builtin:induction";
  m->format = "builtin";

  // RoPE: divide the default frequency of each pair to land on the chosen one (positional
  // pairs) or on ~0 (code pairs).
  const std::vector<double> theta = positional_frequencies();
  m->rope_freq_factors.resize(kHalf);
  for (int i = 0; i < kHalf; ++i) {
    const double base = 1.0 / std::pow(10000.0, 2.0 * i / kHeadDim);
    m->rope_freq_factors[i] = static_cast<float>(i < kPosPairs ? base / theta[i] : 1e30);
  }

  // Token codes.
  SplitMix64 rng(7);
  std::vector<float> code(static_cast<size_t>(n_vocab) * kCode);
  for (auto& v : code) v = (rng.next() & 1 ? 1.0f : -1.0f) / std::sqrt(static_cast<float>(kCode));
  auto code_of = [&](int tok, int i) { return code[static_cast<size_t>(tok) * kCode + i]; };

  auto owned = std::make_shared<std::deque<OwnedMatrix>>();  // deque: references stay valid
  auto matrix = [&](int64_t rows, int64_t cols) -> OwnedMatrix& { return owned->emplace_back(rows, cols); };
  auto weight = [](const OwnedMatrix& o) { return Weight{DType::F32, o.data.data(), o.rows, o.cols}; };

  OwnedMatrix& embd = matrix(n_vocab, kEmbd);
  OwnedMatrix& unembd = matrix(n_vocab, kEmbd);
  for (int t = 0; t < n_vocab; ++t) {
    embd.at(t, 0) = 1.0f;
    for (int i = 0; i < kCode; ++i) {
      embd.at(t, kCur + i) = code_of(t, i);
      unembd.at(t, kOut + i) = code_of(t, i);
    }
  }
  m->tok_embd = weight(embd);
  m->output = weight(unembd);
  m->output_norm.assign(kEmbd, 1.0f);

  const int qd = kHeads * kHeadDim, kd = kKvHeads * kHeadDim;
  // Dimension of code element i inside a head: the non-rotating pairs, first halves then second.
  auto code_dim = [](int i) { return i < kCodePairs ? kPosPairs + i : kHalf + kPosPairs + (i - kCodePairs); };
  m->layers.resize(kLayers);
  for (int l = 0; l < kLayers; ++l) {
    LayerWeights& L = m->layers[l];
    // RMSNorm rescales x by 1/rms(x); these weights undo it for the expected stream norm
    // (constant + one code before layer 0, constant + two codes before layer 1).
    const float expected_rms = std::sqrt(static_cast<float>(l == 0 ? 2 : 3) / kEmbd);
    L.attn_norm.assign(kEmbd, expected_rms);
    L.ffn_norm.assign(kEmbd, 1.0f);
    OwnedMatrix& wq = matrix(qd, kEmbd);
    OwnedMatrix& wk = matrix(kd, kEmbd);
    OwnedMatrix& wv = matrix(kd, kEmbd);
    OwnedMatrix& wo = matrix(kEmbd, qd);
    if (l == 0) {
      // Head 1 (KV group 0): q0 = R(-theta) k0 per pair, so q_i · k_j ∝ sum_k cos((i-1-j) theta_k).
      const int h = 1, g = 0;
      for (int p = 0; p < kPosPairs; ++p) {
        wq.at(h * kHeadDim + p, 0) = kPosGain * static_cast<float>(std::cos(theta[p]));
        wq.at(h * kHeadDim + kHalf + p, 0) = -kPosGain * static_cast<float>(std::sin(theta[p]));
        wk.at(g * kHeadDim + p, 0) = 1.0f;
      }
      for (int i = 0; i < kCode; ++i) {
        wv.at(g * kHeadDim + code_dim(i), kCur + i) = 1.0f;
        wo.at(kPrev + i, h * kHeadDim + code_dim(i)) = 1.0f;
      }
    } else {
      // Heads 1 (group 0) and 2 (group 1): match cur against prev, copy cur, write to out.
      for (int h : {1, 2}) {
        const int g = h / (kHeads / kKvHeads);
        for (int i = 0; i < kCode; ++i) {
          wq.at(h * kHeadDim + code_dim(i), kCur + i) = kMatchGain;
          wk.at(g * kHeadDim + code_dim(i), kPrev + i) = 1.0f;
          wv.at(g * kHeadDim + code_dim(i), kCur + i) = 1.0f;
          wo.at(kOut + i, h * kHeadDim + code_dim(i)) = 0.5f;
        }
      }
    }
    L.wq = weight(wq);
    L.wk = weight(wk);
    L.wv = weight(wv);
    L.wo = weight(wo);
    L.w_gate = weight(matrix(kFF, kEmbd));
    L.w_up = weight(matrix(kFF, kEmbd));
    L.w_down = weight(matrix(kEmbd, kFF));
  }
  m->keep_alive.push_back(owned);

  LoadedModel out;
  out.model = m;
  out.tokenizer = tokenizer;
  return out;
}

}  // namespace rhead

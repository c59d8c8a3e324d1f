// NIAH prompt assembly on token ids (build_niah_prompt, make_prompt_frame) and the grid
// specs (linspace rounding, --lengths parsing, context clipping).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "io/error.h"
#include "model/loader.h"
#include "prompts/inputs.h"
#include "prompts/prompt.h"
#include "test_support.h"

namespace {

using namespace rhead;

constexpr int32_t kPeriod = 99;  // the sentence-end token of the synthetic haystacks
bool is_period(int32_t id) { return id == kPeriod; }

// Haystack tokens 1000, 1001, ... with a period at each position listed.
std::vector<int32_t> haystack_with_periods(size_t n, const std::vector<size_t>& periods) {
  std::vector<int32_t> h(n);
  std::iota(h.begin(), h.end(), 1000);
  for (size_t p : periods) h[p] = kPeriod;
  return h;
}

const std::vector<int32_t> kNeedle = {50, 51, 52};
const PromptFrame kFrame = {{1, 2}, {7, 8, 9}};

TEST(BuildNiahPrompt, HaystackBudgetIsLengthMinusBufferMinusNeedle) {
  const auto hay = haystack_with_periods(100, {4, 9, 14});
  // 40 - 10 - 3 = 27 haystack tokens.
  NiahPrompt p = build_niah_prompt(hay, kNeedle, kFrame, 40, 0, 10, is_period);
  EXPECT_EQ(p.haystack_tokens, 27);
  EXPECT_EQ(p.tokens.size(), kFrame.before.size() + 27 + kNeedle.size() + kFrame.after.size());
  // The haystack part is the first 27 tokens, needle spliced in, frame around it.
  std::vector<int32_t> hay_part;
  for (int64_t i = 2; i < static_cast<int64_t>(p.tokens.size()) - 3; ++i)
    if (i < p.needle_begin || i >= p.needle_end) hay_part.push_back(p.tokens[i]);
  EXPECT_EQ(hay_part, std::vector<int32_t>(hay.begin(), hay.begin() + 27));
  EXPECT_EQ(std::vector<int32_t>(p.tokens.begin(), p.tokens.begin() + 2), kFrame.before);
  EXPECT_EQ(std::vector<int32_t>(p.tokens.end() - 3, p.tokens.end()), kFrame.after);
}

TEST(BuildNiahPrompt, DepthZeroPutsTheNeedleFirst) {
  const auto hay = haystack_with_periods(100, {4, 9, 14});
  NiahPrompt p = build_niah_prompt(hay, kNeedle, kFrame, 40, 0, 10, is_period);
  EXPECT_EQ(p.insert_offset, 0);
  EXPECT_EQ(p.needle_begin, 2);
  EXPECT_EQ(p.needle_end, 5);
  EXPECT_EQ(std::vector<int32_t>(p.tokens.begin() + 2, p.tokens.begin() + 5), kNeedle);
  EXPECT_EQ(p.tokens[5], hay[0]);
}

TEST(BuildNiahPrompt, DepthHundredAppendsAfterTheWholeHaystack) {
  // No period near the end: depth 100 still appends rather than moving back.
  const auto hay = haystack_with_periods(100, {4});
  NiahPrompt p = build_niah_prompt(hay, kNeedle, kFrame, 40, 100, 10, is_period);
  EXPECT_EQ(p.insert_offset, 27);
  EXPECT_EQ(p.needle_begin, 2 + 27);
  EXPECT_EQ(p.tokens[p.needle_begin - 1], hay[26]);
  EXPECT_EQ(std::vector<int32_t>(p.tokens.begin() + p.needle_begin, p.tokens.begin() + p.needle_end), kNeedle);
  EXPECT_EQ(p.tokens[p.needle_end], kFrame.after[0]);
}

TEST(BuildNiahPrompt, InsertionMovesBackToJustAfterASentenceEnd) {
  const auto hay = haystack_with_periods(100, {4, 9, 20});
  // n_hay = 27; depth 50 -> int(13.5) = 13; back to just after the period at index 9.
  NiahPrompt p = build_niah_prompt(hay, kNeedle, kFrame, 40, 50, 10, is_period);
  EXPECT_EQ(p.insert_offset, 10);
  EXPECT_EQ(p.tokens[p.needle_begin - 1], kPeriod);
  // Already just after a period: no move. depth 37 -> int(27 * 0.37) = int(9.99) = 9 -> 5.
  p = build_niah_prompt(hay, kNeedle, kFrame, 40, 37, 10, is_period);
  EXPECT_EQ(p.insert_offset, 5);
  // A position right after a period stays: 27 * 78 / 100 = 21.06 -> 21, hay[20] is a period.
  p = build_niah_prompt(hay, kNeedle, kFrame, 40, 78, 10, is_period);
  EXPECT_EQ(p.insert_offset, 21);
}

TEST(BuildNiahPrompt, NoSentenceEndBeforeTheDepthFallsBackToTheStart) {
  const auto hay = haystack_with_periods(100, {30});
  NiahPrompt p = build_niah_prompt(hay, kNeedle, kFrame, 40, 89, 10, is_period);
  EXPECT_EQ(p.insert_offset, 0);
  EXPECT_EQ(p.needle_begin, 2);
}

TEST(BuildNiahPrompt, InsertionPointUsesTheCutHaystackLength) {
  // The reference takes int(len(cut haystack) * depth / 100): with periods everywhere the
  // insertion point is exactly that integer.
  std::vector<int32_t> hay(500, kPeriod);
  for (int depth : {0, 11, 22, 33, 44, 56, 67, 78, 89}) {
    NiahPrompt p = build_niah_prompt(hay, kNeedle, kFrame, 400, depth, 200, is_period);
    EXPECT_EQ(p.haystack_tokens, 197);
    EXPECT_EQ(p.insert_offset, 197 * depth / 100) << depth;
  }
}

TEST(BuildNiahPrompt, RejectsLengthsWithNoRoomAndShortHaystacks) {
  const auto hay = haystack_with_periods(100, {4});
  EXPECT_THROW(build_niah_prompt(hay, kNeedle, kFrame, 13, 0, 10, is_period), Error);  // 13-10-3 = 0
  EXPECT_NO_THROW(build_niah_prompt(hay, kNeedle, kFrame, 14, 0, 10, is_period));
  EXPECT_THROW(build_niah_prompt(hay, kNeedle, kFrame, 200, 0, 10, is_period), Error);  // needs 187
}

TEST(Linspace, RoundsHalfToEvenLikeNumpy) {
  // numpy: np.round(np.linspace(0, 5, 11)) -> 0 0 1 2 2 2 3 4 4 4 5.
  EXPECT_EQ(linspace_rounded(0, 5, 11), (std::vector<int64_t>{0, 0, 1, 2, 2, 2, 3, 4, 4, 4, 5}));
  // The paper's length grid.
  EXPECT_EQ(linspace_rounded(1000, 50000, 20),
            (std::vector<int64_t>{1000,  3579,  6158,  8737,  11316, 13895, 16474, 19053, 21632, 24211,
                                  26789, 29368, 31947, 34526, 37105, 39684, 42263, 44842, 47421, 50000}));
  EXPECT_EQ(linspace_rounded(300, 500, 5), (std::vector<int64_t>{300, 350, 400, 450, 500}));
  EXPECT_EQ(linspace_rounded(7, 9, 1), (std::vector<int64_t>{7}));
  EXPECT_TRUE(linspace_rounded(0, 1, 0).empty());
}

TEST(Linspace, DepthGrids) {
  EXPECT_EQ(depths_from_count(10), (std::vector<int>{0, 11, 22, 33, 44, 56, 67, 78, 89, 100}));
  EXPECT_EQ(depths_from_count(5), (std::vector<int>{0, 25, 50, 75, 100}));
  EXPECT_EQ(depths_from_count(3), (std::vector<int>{0, 50, 100}));
}

TEST(ParseLengths, AcceptsMinMaxCountAndDropsDuplicates) {
  EXPECT_EQ(parse_lengths("300:500:5"), (std::vector<int64_t>{300, 350, 400, 450, 500}));
  EXPECT_EQ(parse_lengths("1000:1000:3"), (std::vector<int64_t>{1000}));
  EXPECT_EQ(parse_lengths("10:12:5"), (std::vector<int64_t>{10, 11, 12}));  // 10 10.5 11 11.5 12 -> 10 10 11 12 12
}

TEST(ParseLengths, RejectsMalformedSpecs) {
  for (const char* bad : {"", "300", "300:500", "300:500:5:1", "a:500:5", "300:b:5", "300:500:c", "500:300:5",
                          "0:500:5", "-5:500:5", "300:500:0", "300:500:-2", "300x:500:5", "300:500:5x", "300:500:2.5"})
    EXPECT_THROW(parse_lengths(bad), Error) << "'" << bad << "'";
}

TEST(ClipLengths, DropsLongLengthsAndAddsTheMaximum) {
  std::vector<int64_t> l = {300, 400, 500, 600};
  EXPECT_EQ(clip_lengths(l, 512), 1);
  EXPECT_EQ(l, (std::vector<int64_t>{300, 400, 500, 512}));
  l = {300, 512, 600};
  EXPECT_EQ(clip_lengths(l, 512), 1);
  EXPECT_EQ(l, (std::vector<int64_t>{300, 512}));
  l = {300, 400};
  EXPECT_EQ(clip_lengths(l, 512), 0);
  EXPECT_EQ(l, (std::vector<int64_t>{300, 400}));
}

// On a real SentencePiece tokenizer: the frame around the context and the needle splice
// keep every token of the needle and the template.
TEST(PromptFrame, BasePromptOnTok512) {
  const std::string gguf = rhead::testing::shared_path("models/niah-tiny/niah-tiny-f32.gguf");
  RHEAD_REQUIRE_FILE(gguf);
  LoadedModel lm = load_model(gguf);
  const Tokenizer& tok = *lm.tokenizer;
  PromptFormat f;
  f.base_template = "{context}\nQuestion: {question}\nAnswer:";
  PromptFrame frame = make_prompt_frame(tok, f, "What is the secret code of the wall?");
  ASSERT_FALSE(frame.before.empty());
  EXPECT_EQ(frame.before.front(), tok.bos_id());
  EXPECT_EQ(frame.before.size(), 1u);  // nothing precedes {context} but BOS
  EXPECT_EQ(tok.decode(frame.after), "\nQuestion: What is the secret code of the wall?\nAnswer:");
  // The reference base prompt puts no text before {context} either.
  PromptFormat ref;
  PromptFrame rf = make_prompt_frame(tok, ref, "Q?");
  EXPECT_EQ(rf.before.size(), 1u);
  EXPECT_EQ(tok.decode(rf.after), "Based on the content of the book, Question: Q?\nAnswer:");
  // No dummy-prefix space token at the seam.
  EXPECT_NE(tok.token_text(rf.after.front()), "\xE2\x96\x81");
  PromptFormat bad;
  bad.base_template = "no placeholder {question}";
  EXPECT_THROW(make_prompt_frame(tok, bad, "Q?"), Error);
}

TEST(PromptFrame, SentenceEndTokensOnTok512) {
  const std::string gguf = rhead::testing::shared_path("models/niah-tiny/niah-tiny-f32.gguf");
  RHEAD_REQUIRE_FILE(gguf);
  LoadedModel lm = load_model(gguf);
  const Tokenizer& tok = *lm.tokenizer;
  const std::vector<int32_t> ids = tok.encode("It rained. Then it stopped.", false, false);
  int ends = 0;
  for (int32_t id : ids) ends += token_ends_sentence(tok, id);
  EXPECT_EQ(ends, 2);
  EXPECT_TRUE(token_ends_sentence(tok, ids.back()));
  EXPECT_FALSE(token_ends_sentence(tok, ids.front()));
}

}  // namespace

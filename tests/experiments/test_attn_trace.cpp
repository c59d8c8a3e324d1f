// experiments/attn_trace: the per-step, per-head trace behind `rhead attn`, on
// builtin:induction, whose heads are known by construction (0-1 looks one token back, 1-1
// and 1-2 are induction heads).
#include <gtest/gtest.h>

#include "experiments/attn_trace.h"
#include "io/error.h"
#include "model/builtin.h"

namespace {

std::vector<int32_t> induction_prompt(const rhead::Tokenizer& tok) {
  return tok.encode("river town field road garden market bridge forest village farmer river town field", true);
}

TEST(AttnTrace, RecordsTheChosenHeadsAndTheirCopies) {
  rhead::LoadedModel lm = rhead::load_builtin_model("induction");
  const rhead::Tokenizer& tok = *lm.tokenizer;
  rhead::Session session(lm.model, {});
  rhead::AttnTraceRequest req;
  req.prompt = induction_prompt(tok);
  req.max_new_tokens = 4;
  req.top_k = 2;
  req.heads = {{1, 2}, {0, 1}};
  int seen = 0;
  const rhead::AttnTrace t =
      rhead::trace_attention(session, req, [&](const rhead::AttnStep& s) { seen += s.index == seen; });
  EXPECT_EQ(seen, 4);
  EXPECT_EQ(t.prompt_tokens, 14);
  ASSERT_EQ(t.steps.size(), 4u);
  EXPECT_EQ(tok.decode(t.generated), "road garden market bridge");
  for (size_t i = 0; i < t.steps.size(); ++i) {
    const rhead::AttnStep& s = t.steps[i];
    ASSERT_EQ(s.heads.size(), 2u);
    EXPECT_EQ(s.heads[0].head, (rhead::HeadId{1, 2}));  // the request's order
    EXPECT_EQ(s.position, 13 + static_cast<int64_t>(i));
    EXPECT_EQ(s.heads[0].argmax, 4 + static_cast<int>(i));
    EXPECT_EQ(s.heads[0].argmax_token, s.token);
    EXPECT_TRUE(s.heads[0].copy);
    EXPECT_EQ(s.heads[1].argmax, s.position - 1);  // previous-token head
    EXPECT_FALSE(s.heads[1].copy);
    EXPECT_EQ(s.heads[0].topk.front(), s.heads[0].argmax);
    EXPECT_EQ(s.heads[0].topk_token.front(), s.token);
    EXPECT_EQ(s.copying, (std::vector<rhead::HeadId>{{1, 2}}));
  }
  EXPECT_EQ(t.copies.at(1, 2), 4);
  EXPECT_EQ(t.copies.at(1, 1), 0);  // not chosen: not counted
  // The figure draws a chosen head, and refuses one outside the trace.
  const rhead::report::Drawing d = rhead::attention_figure(t, tok, {1, 2});
  EXPECT_GT(d.width, 0);
  EXPECT_THROW(rhead::attention_figure(t, tok, {1, 1}), rhead::Error);
}

TEST(AttnTrace, MaskedHeadsNeverCopyAndStopAfterEnds) {
  rhead::LoadedModel lm = rhead::load_builtin_model("induction");
  const rhead::Tokenizer& tok = *lm.tokenizer;
  rhead::Session session(lm.model, {});
  rhead::HeadMask mask = rhead::make_head_mask({{1, 1}, {1, 2}}, lm.model->config);
  rhead::AttnTraceRequest req;
  req.prompt = induction_prompt(tok);
  req.max_new_tokens = 5;
  req.mask = &mask;
  int calls = 0;
  req.stop_after = [&](int32_t) { return ++calls == 2; };
  const rhead::AttnTrace t = rhead::trace_attention(session, req);
  ASSERT_EQ(t.steps.size(), 2u);  // stopped after the second token
  for (const auto& s : t.steps) {
    EXPECT_EQ(s.heads.size(), 8u);  // every head by default
    for (const auto& h : s.heads) {
      EXPECT_EQ(h.masked, h.head.layer == 1 && (h.head.head == 1 || h.head.head == 2));
      if (h.masked) {
        EXPECT_FALSE(h.copy);
      }
    }
  }
  EXPECT_EQ(rhead::parse_layer_list("0,2-3", 4, "--layers"), (std::vector<int>{0, 2, 3}));
  EXPECT_THROW(rhead::parse_layer_list("3-1", 4, "--layers"), rhead::Error);
  EXPECT_THROW(rhead::parse_layer_list("4", 4, "--layers"), rhead::Error);
}

}  // namespace

// Explain one answer: which context tokens the top retrieval heads copied each answer token
// from, and whether the answer is grounded in the document.
//
// The prompt is the NIAH prompt (make_prompt_frame: template fragments tokenized on their
// own, the document tokenized once, in between), decoded greedily as NIAH decodes (stop
// after a token holding a newline, or at end of generation). At every decode step the
// attention kernel reports, for each query head, its argmax key position and weight, its
// attention mass inside the document and on position 0. For the answer token emitted at
// that step, over the chosen top heads:
//   sources      the heads whose argmax lies on a document token with the token's id (the
//                copy rule of the retrieval score, over the whole document); a masked head
//                never copies, its output does not reach the model;
//   support      copied     at least one top head copied it;
//                attended   none copied it, but the top heads' mean attention mass inside the
//                           document is at least tau;
//                unsupported neither;
//   sink_mass    the top heads' mean attention mass on position 0.
// Means run over the top heads that are not masked (0 when all are). The answer's
// support_share is the share of its tokens that are copied. End-of-generation tokens and
// tokens that are only whitespace around a newline are not answer tokens.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/heads.h"
#include "model/probes.h"
#include "model/session.h"
#include "prompts/prompt.h"
#include "tokenizer/token_offsets.h"
#include "tokenizer/tokenizer.h"

namespace rhead {

// Default tau: half of the top heads' attention inside the document.
inline constexpr double kDefaultAttendedTau = 0.5;

enum class Support { copied, attended, unsupported };
const char* support_name(Support s);

struct TokenSource {
  int64_t pos = 0;         // prompt position of the copied document token
  int64_t char_begin = 0;  // its bytes in the context text [char_begin, char_end)
  int64_t char_end = 0;
  HeadId head;        // the top head that copied it
  float weight = 0;   // that head's attention weight on pos
  std::string piece;  // the token's text (equal to the answer token's piece)
};

struct ExplainedToken {
  int32_t id = 0;
  std::string piece;
  Support support = Support::unsupported;
  double sink_mass = 0;              // mean over unmasked top heads, 0..1
  double document_mass = 0;          // mean over unmasked top heads, 0..1
  std::vector<TokenSource> sources;  // by head (top-head order); pos/char offsets filled
};

// Classifies the token emitted at one decode step. `probes` holds one observation (that
// step's query) with argmax, span mass over the document and sink mass; `sequence` holds
// the token at every position up to the query; the document is [doc_begin, doc_end).
// Sources get pos, head, weight and piece; char offsets are left 0 (the caller maps them).
ExplainedToken classify_answer_token(const Tokenizer& tok, const ProbeRecord& probes, int32_t token,
                                     std::span<const int32_t> sequence, int64_t doc_begin, int64_t doc_end,
                                     const std::vector<HeadId>& heads, const HeadMask* mask, double tau);

// True for tokens that count as answer tokens (not end of generation, not a bare newline).
bool is_answer_token(const Tokenizer& tok, int32_t id);

// Characters of a piece that count for the copy length rule: UTF-8 code points other than
// whitespace and SentencePiece's word mark (U+2581).
int visible_characters(const std::string& piece);

// The copy length rule of answer support: a single equal character proves nothing, so a
// source of a token with fewer than two visible characters counts only when it is part of a
// run, i.e. the previous answer token has a source at pos - 1 or the next one at pos + 1
// (any top head). Tokens left without a source become attended (document_mass >= tau) or
// unsupported.
void apply_copy_length_rule(std::vector<ExplainedToken>& tokens, double tau);

// Share of `tokens` that are copied; 0 for no tokens.
double support_share(const std::vector<ExplainedToken>& tokens);

// The heads whose copies count for support_share (niah, qa) and explain's top heads: the top
// `n` heads of a score map by mean retrieval score, among the heads scoring above 0 (a head
// that never copied in detection is no retrieval head: fewer than `n` when fewer score), or
// every head of the model without a map. Error when no head of the map scores above 0.
std::vector<HeadId> support_heads_for(const HeadGrid<double>* scores, int n, const ModelConfig& config);

// support_share over the runs of one condition, split by outcome (NIAH: score > 50; QA: F1 >
// 0.5): the mean of each side and the AUROC of support_share for telling passed runs from
// failed ones (NaN where a side is empty).
struct SupportSummary {
  std::vector<double> passed, failed;
  void add(double share, bool pass) { (pass ? passed : failed).push_back(share); }
  double mean_passed() const;
  double mean_failed() const;
  double auroc() const;
  bool empty() const { return passed.empty() && failed.empty(); }
};

// The printed table of support by condition; "" when no condition has a support_share.
std::string support_table(const std::vector<std::pair<std::string, SupportSummary>>& rows);

// The support of one answer, step by step, for experiments that decode on their own (niah,
// qa): ask for its probes, show it every emitted token, read support_share at the end.
class AnswerSupport {
 public:
  AnswerSupport(const Tokenizer& tok, std::vector<HeadId> heads, int64_t doc_begin, int64_t doc_end,
                const HeadMask* mask, double tau = kDefaultAttendedTau);
  // Adds what classify_answer_token reads (argmax, document span mass, sink mass) to `probes`.
  void request(ProbeRequest& probes) const;
  // One decode step: `probes` of its query, the token it emitted, and the token at every
  // position up to the query. Tokens that are not answer tokens are skipped.
  void observe(const ProbeRecord& probes, int32_t token, std::span<const int32_t> sequence);
  // The answer tokens so far, after the copy length rule (apply_copy_length_rule).
  const std::vector<ExplainedToken>& tokens() const { return tokens_; }
  double share() const { return support_share(tokens_); }

 private:
  const Tokenizer* tok_;
  std::vector<HeadId> heads_;
  int64_t doc_begin_, doc_end_;
  const HeadMask* mask_;
  double tau_;
  std::vector<ExplainedToken> raw_;     // as classified, before the length rule
  std::vector<ExplainedToken> tokens_;  // after it
};

struct ExplainRequest {
  std::string context;  // the document text (the context file's bytes)
  std::string question;
  PromptFormat format;
  std::vector<HeadId> heads;       // top heads, best first
  const HeadMask* mask = nullptr;  // interventions (nullptr: none)
  double tau = kDefaultAttendedTau;
  int max_new_tokens = 50;
};

struct Explanation {
  std::string answer;                  // the answer tokens decoded
  std::vector<ExplainedToken> tokens;  // answer tokens
  double support_share = 0;
  std::vector<HeadId> heads;
  double tau = 0;
  int64_t doc_begin = 0, doc_end = 0;  // prompt positions of the document
  int64_t prompt_tokens = 0;
  std::vector<ByteRange> document_ranges;  // [doc_end - doc_begin] bytes of each document token
};

// Tokens of the prompt for a request: frame.before + document + frame.after.
struct ExplainPrompt {
  std::vector<int32_t> tokens;
  std::vector<int32_t> document;  // the context's tokens
  int64_t doc_begin = 0, doc_end = 0;
};
ExplainPrompt build_explain_prompt(const Tokenizer& tok, const ExplainRequest& request);

// Runs the request on an empty session and explains the answer. Error when the prompt and
// one answer token do not fit the session; the answer stops early when the cache is full.
Explanation explain(Session& session, const Tokenizer& tok, const ExplainRequest& request);

// The --json document: answer, tokens (id, piece, support, sink_mass, document_mass,
// sources with pos, char_begin, char_end, head "L-H", weight, piece), support_share, plus
// top_heads, tau, and the document's prompt positions.
nlohmann::ordered_json explanation_to_json(const Explanation& e);

}  // namespace rhead

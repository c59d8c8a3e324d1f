// Per-token grounding of an answer: copy sources, support and sink mass of the top heads.
#include "support/explain.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "analysis/stats.h"
#include "io/enum_names.h"
#include "io/error.h"
#include "model/generate.h"

namespace rhead {

constexpr EnumName<Support> kSupportNames[] = {
    {Support::copied, "copied"}, {Support::attended, "attended"}, {Support::unsupported, "unsupported"}};

const char* support_name(Support s) { return name_in(kSupportNames, s); }

bool is_answer_token(const Tokenizer& tok, int32_t id) {
  if (tok.is_end_of_generation(id)) return false;
  const std::string piece = tok.piece(id);
  const bool newline = piece.find('\n') != std::string::npos;
  const bool blank =
      std::all_of(piece.begin(), piece.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
  return !(newline && blank);
}

ExplainedToken classify_answer_token(const Tokenizer& tok, const ProbeRecord& probes, int32_t token,
                                     std::span<const int32_t> sequence, int64_t doc_begin, int64_t doc_end,
                                     const std::vector<HeadId>& heads, const HeadMask* mask, double tau) {
  ExplainedToken t;
  t.id = token;
  t.piece = tok.piece(token);
  int active = 0;
  double doc_mass = 0, sink = 0;
  for (const auto& [l, h] : heads) {
    if (mask && !mask->masked.empty() && mask->contains(l, h)) continue;
    ++active;
    const int64_t i = probes.index(0, l, h);
    if (!probes.span_mass.empty()) doc_mass += probes.span_mass[i];
    if (!probes.sink_mass.empty()) sink += probes.sink_mass[i];
    const int64_t j = probes.argmax[i];
    if (j >= doc_begin && j < doc_end && is_copy(j, sequence, token, false)) {
      TokenSource s;
      s.pos = j;
      s.head = {l, h};
      s.weight = probes.argmax_weight[i];
      s.piece = t.piece;
      t.sources.push_back(std::move(s));
    }
  }
  if (active > 0) {
    t.document_mass = doc_mass / active;
    t.sink_mass = sink / active;
  }
  t.support = !t.sources.empty() ? Support::copied
                                 : (active > 0 && t.document_mass >= tau ? Support::attended : Support::unsupported);
  return t;
}

AnswerSupport::AnswerSupport(const Tokenizer& tok, std::vector<HeadId> heads, int64_t doc_begin, int64_t doc_end,
                             const HeadMask* mask, double tau)
    : tok_(&tok),
      heads_(std::move(heads)),
      doc_begin_(doc_begin),
      doc_end_(doc_end),
      mask_(mask && !mask->empty() ? mask : nullptr),
      tau_(tau) {}

void AnswerSupport::request(ProbeRequest& probes) const {
  probes.argmax = true;
  probes.span_begin = doc_begin_;
  probes.span_end = doc_end_;
  probes.sink = true;
}

void AnswerSupport::observe(const ProbeRecord& probes, int32_t token, std::span<const int32_t> sequence) {
  if (!is_answer_token(*tok_, token)) return;
  raw_.push_back(classify_answer_token(*tok_, probes, token, sequence, doc_begin_, doc_end_, heads_, mask_, tau_));
  tokens_ = raw_;  // the rule looks at both neighbours, so the last two tokens may change
  apply_copy_length_rule(tokens_, tau_);
}

int visible_characters(const std::string& piece) {
  int n = 0;
  for (size_t i = 0; i < piece.size();) {
    const unsigned char c = static_cast<unsigned char>(piece[i]);
    const size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
    const bool word_mark = piece.compare(i, 3, "\xE2\x96\x81") == 0;
    if (!word_mark && !(len == 1 && std::isspace(c))) ++n;
    i += len;
  }
  return n;
}

void apply_copy_length_rule(std::vector<ExplainedToken>& tokens, double tau) {
  const std::vector<ExplainedToken> raw = tokens;
  auto has_source_at = [&](size_t i, int64_t pos) {
    return std::any_of(raw[i].sources.begin(), raw[i].sources.end(),
                       [pos](const TokenSource& s) { return s.pos == pos; });
  };
  for (size_t i = 0; i < tokens.size(); ++i) {
    ExplainedToken& t = tokens[i];
    if (t.sources.empty() || visible_characters(t.piece) >= 2) continue;
    std::erase_if(t.sources, [&](const TokenSource& s) {
      const bool run =
          (i > 0 && has_source_at(i - 1, s.pos - 1)) || (i + 1 < raw.size() && has_source_at(i + 1, s.pos + 1));
      return !run;
    });
    // Sources exist only for unmasked top heads, so the means below are over at least one head.
    if (t.sources.empty()) t.support = t.document_mass >= tau ? Support::attended : Support::unsupported;
  }
}

double support_share(const std::vector<ExplainedToken>& tokens) {
  if (tokens.empty()) return 0.0;
  const auto copied =
      std::count_if(tokens.begin(), tokens.end(), [](const ExplainedToken& t) { return t.support == Support::copied; });
  return static_cast<double>(copied) / static_cast<double>(tokens.size());
}

std::vector<HeadId> support_heads_for(const HeadGrid<double>* scores, int n, const ModelConfig& config) {
  if (!scores) return select_heads("all", config);
  const int positive = static_cast<int>(std::count_if(scores->begin(), scores->end(), [](double v) { return v > 0; }));
  // top:1 when none scores above 0: the selection's own error says so.
  return select_heads("top:" + std::to_string(std::max(1, std::min(n, positive))), config, scores);
}

namespace {
// Summed in ascending order, so a run and the merge of its shards (lines in another order)
// give the same bits.
double mean_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? std::nan("") : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}
}  // namespace

double SupportSummary::mean_passed() const { return mean_of(passed); }
double SupportSummary::mean_failed() const { return mean_of(failed); }
double SupportSummary::auroc() const { return analysis::auroc(passed, failed); }

std::string support_table(const std::vector<std::pair<std::string, SupportSummary>>& rows) {
  if (std::all_of(rows.begin(), rows.end(), [](const auto& r) { return r.second.empty(); })) return "";
  auto cell = [](double v) {
    char b[32];
    if (std::isnan(v)) return std::string("-");
    std::snprintf(b, sizeof b, "%.3f", v);
    return std::string(b);
  };
  std::string out =
      "\n support: share of answer tokens copied by the support heads (mean over passed / failed runs)\n"
      " mask                          passed  failed  support_auroc\n";
  for (const auto& [label, s] : rows) {
    char buf[160];
    std::snprintf(buf, sizeof buf, " %-29s %6s  %6s  %13s\n", label.c_str(), cell(s.mean_passed()).c_str(),
                  cell(s.mean_failed()).c_str(), cell(s.auroc()).c_str());
    out += buf;
  }
  return out;
}

ExplainPrompt build_explain_prompt(const Tokenizer& tok, const ExplainRequest& request) {
  if (request.question.find_first_not_of(" \t\r\n") == std::string::npos) throw Error("the question is empty");
  ExplainPrompt p;
  p.document = tok.encode(request.context, false, false);
  if (p.document.empty()) throw Error("the context is empty");
  // The NIAH builder with no needle and the whole document as the haystack (depth 100: the
  // empty needle goes at its end), so the prompt is the one a NIAH test would build.
  const PromptFrame frame = make_prompt_frame(tok, request.format, request.question);
  const int64_t n_doc = static_cast<int64_t>(p.document.size());
  NiahPrompt niah = build_niah_prompt(p.document, {}, frame, n_doc, 100, 0, [](int32_t) { return true; });
  p.tokens = std::move(niah.tokens);
  p.doc_begin = static_cast<int64_t>(frame.before.size());
  p.doc_end = p.doc_begin + n_doc;
  return p;
}

Explanation explain(Session& session, const Tokenizer& tok, const ExplainRequest& request) {
  ExplainPrompt prompt = build_explain_prompt(tok, request);
  if (session.n_past() != 0) throw Error("explain needs an empty session");
  // The answer may use whatever positions the prompt leaves (generation stops when the cache
  // is full); the prompt itself and one answer token must fit.
  if (static_cast<int64_t>(prompt.tokens.size()) + 1 > session.capacity())
    throw Error("the context is too long for the model: the prompt has " + std::to_string(prompt.tokens.size()) +
                " tokens (document " + std::to_string(prompt.document.size()) + "), the model reads at most " +
                std::to_string(session.capacity()));
  Explanation e;
  e.heads = request.heads;
  e.tau = request.tau;
  e.doc_begin = prompt.doc_begin;
  e.doc_end = prompt.doc_end;
  e.prompt_tokens = static_cast<int64_t>(prompt.tokens.size());
  e.document_ranges = token_byte_ranges(tok, request.context, prompt.document);

  const HeadMask* mask = request.mask && !request.mask->empty() ? request.mask : nullptr;
  AnswerSupport support(tok, request.heads, prompt.doc_begin, prompt.doc_end, mask, request.tau);
  ProbeRequest probes;
  support.request(probes);
  std::vector<int32_t> sequence = prompt.tokens;
  std::vector<int32_t> answer_ids;
  GreedyOptions go;
  go.max_new_tokens = request.max_new_tokens;
  go.probes = &probes;
  go.mask = mask;
  go.on_token = [&](const DecodeStep& step) {
    support.observe(*step.probes, step.token, sequence);
    sequence.push_back(step.token);
    if (tok.is_end_of_generation(step.token)) return false;
    if (is_answer_token(tok, step.token)) answer_ids.push_back(step.token);
    return tok.piece(step.token).find('\n') == std::string::npos;
  };
  generate_greedy(session, prompt.tokens, go);
  e.answer = tok.decode(answer_ids);
  e.tokens = support.tokens();
  for (ExplainedToken& t : e.tokens)
    for (TokenSource& s : t.sources) {
      const ByteRange r = e.document_ranges[static_cast<size_t>(s.pos - prompt.doc_begin)];
      s.char_begin = r.begin;
      s.char_end = r.end;
    }
  e.support_share = support_share(e.tokens);
  return e;
}

nlohmann::ordered_json explanation_to_json(const Explanation& e) {
  using nlohmann::ordered_json;
  ordered_json j;
  j["answer"] = e.answer;
  ordered_json tokens = ordered_json::array();
  for (const ExplainedToken& t : e.tokens) {
    ordered_json sources = ordered_json::array();
    for (const TokenSource& s : t.sources)
      sources.push_back({{"pos", s.pos},
                         {"char_begin", s.char_begin},
                         {"char_end", s.char_end},
                         {"head", s.head.key()},
                         {"weight", s.weight},
                         {"piece", s.piece}});
    tokens.push_back({{"id", t.id},
                      {"piece", t.piece},
                      {"support", support_name(t.support)},
                      {"sink_mass", t.sink_mass},
                      {"document_mass", t.document_mass},
                      {"sources", std::move(sources)}});
  }
  j["tokens"] = std::move(tokens);
  j["support_share"] = e.support_share;
  ordered_json heads = ordered_json::array();
  for (const auto& h : e.heads) heads.push_back(h.key());
  j["top_heads"] = std::move(heads);
  j["tau"] = e.tau;
  j["document"] = {{"begin", e.doc_begin}, {"end", e.doc_end}, {"prompt_tokens", e.prompt_tokens}};
  return j;
}

}  // namespace rhead

// rhead explain: the per-token trace on builtin:induction (sources computed by hand), the
// JSON document's internal consistency, token byte ranges on real essays, the one-line
// errors of the CLI, and the HTML page in a real browser (tests/browser).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "support/explain.h"
#include "io/error.h"
#include "io/builtin_data.h"
#include "model/builtin.h"
#include "model/generate.h"
#include "model/heads.h"
#include "test_support.h"
#include "tokenizer/token_offsets.h"

namespace {

namespace fs = std::filesystem;
using rhead::testing::MkdtempDir;
using rhead::testing::read_text_file;
using rhead::testing::run_command;
using rhead::testing::shell_quote;

// Scores for builtin:induction: its induction heads 1-1 and 1-2 first, the previous-token
// head 0-1 next, every other head 0.
const char* kInductionScores =
    R"({"0-0":[0],"0-1":[0.05],"0-2":[0],"0-3":[0],"1-0":[0],"1-1":[1.0],"1-2":[0.9],"1-3":[0]})";

const rhead::Needle& vault_needle() { return rhead::induction_needles()[0]; }

// Haystack, then the needle sentence (ending in a newline), then more haystack.
std::string induction_context() {
  return rhead::builtin_haystack(150, 7) + " " + vault_needle().needle + rhead::builtin_haystack(80, 8);
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

rhead::testing::CommandResult rhead_cli(const std::string& args) {
  return run_command(shell_quote(rhead::testing::rhead_binary()) + " " + args);
}

// Checks the document invariants: every source's piece is its token's piece, its byte range
// holds that text in the context, and support/support_share agree with the sources.
void expect_consistent(const nlohmann::json& j, const std::string& context) {
  ASSERT_TRUE(j.contains("tokens") && j.contains("answer") && j.contains("support_share"));
  int copied = 0;
  for (const auto& t : j["tokens"]) {
    const std::string piece = t["piece"];
    const std::string support = t["support"];
    EXPECT_TRUE(support == "copied" || support == "attended" || support == "unsupported") << support;
    EXPECT_EQ(support == "copied", !t["sources"].empty()) << piece;
    EXPECT_GE(t["sink_mass"].get<double>(), 0.0);
    EXPECT_LE(t["sink_mass"].get<double>(), 1.0 + 1e-6);
    copied += support == "copied";
    for (const auto& s : t["sources"]) {
      EXPECT_EQ(s["piece"].get<std::string>(), piece);
      const int64_t b = s["char_begin"], e = s["char_end"];
      ASSERT_LE(0, b);
      ASSERT_LT(b, e);
      ASSERT_LE(e, static_cast<int64_t>(context.size()));
      const std::string text = context.substr(b, e - b);
      // SentencePiece's implied leading space of the document's first token is not in the file.
      EXPECT_TRUE(text == piece || (b == 0 && " " + text == piece)) << "'" << text << "' vs '" << piece << "'";
      EXPECT_GE(s["pos"].get<int64_t>(), j["document"]["begin"].get<int64_t>());
      EXPECT_LT(s["pos"].get<int64_t>(), j["document"]["end"].get<int64_t>());
    }
  }
  const size_t n = j["tokens"].size();
  EXPECT_NEAR(j["support_share"].get<double>(), n ? static_cast<double>(copied) / n : 0.0, 1e-12);
}

TEST(Explain, InductionHeadsCopyEveryAnswerTokenFromTheNeedle) {
  rhead::LoadedModel lm = rhead::load_builtin_model("induction");
  const rhead::Tokenizer& tok = *lm.tokenizer;
  rhead::ExplainRequest req;
  req.context = induction_context();
  req.question = vault_needle().question;
  req.format.base_template = rhead::induction_prompt_template();
  req.heads = {{1, 1}, {1, 2}};
  rhead::Session session(lm.model, {});
  const rhead::Explanation e = rhead::explain(session, tok, req);

  // By hand: the prompt is BOS + document + "\n" + question, so the document starts at
  // position 1; the answer words are whole tokens "▁cobalt" ... of the built-in vocabulary,
  // found once in the document, right where the needle put them.
  const std::vector<std::string> words = {"cobalt", "ember", "thistle", "nine"};
  const std::vector<int32_t> doc = tok.encode(req.context, false, false);
  std::vector<int32_t> ids;
  for (const auto& w : words) ids.push_back(tok.token_id("\xE2\x96\x81" + w));
  size_t at = 0;
  while (at + ids.size() <= doc.size() && !std::equal(ids.begin(), ids.end(), doc.begin() + at)) ++at;
  ASSERT_LT(at + ids.size(), doc.size()) << "the needle's answer words are not tokens of the document";
  const size_t byte_at = req.context.find(" cobalt ember thistle nine");
  ASSERT_NE(byte_at, std::string::npos);

  EXPECT_EQ(e.doc_begin, 1);
  EXPECT_EQ(e.doc_end, 1 + static_cast<int64_t>(doc.size()));
  EXPECT_EQ(e.answer, "cobalt ember thistle nine");
  ASSERT_EQ(e.tokens.size(), words.size());
  EXPECT_DOUBLE_EQ(e.support_share, 1.0);
  size_t byte = byte_at;
  for (size_t k = 0; k < words.size(); ++k) {
    const rhead::ExplainedToken& t = e.tokens[k];
    EXPECT_EQ(t.id, ids[k]);
    EXPECT_EQ(t.support, rhead::Support::copied) << words[k];
    ASSERT_EQ(t.sources.size(), 2u) << words[k];
    for (size_t s = 0; s < 2; ++s) {
      EXPECT_EQ(t.sources[s].head, req.heads[s]);
      EXPECT_EQ(t.sources[s].pos, static_cast<int64_t>(1 + at + k)) << words[k];
      EXPECT_EQ(t.sources[s].char_begin, static_cast<int64_t>(byte)) << words[k];
      EXPECT_EQ(t.sources[s].char_end, static_cast<int64_t>(byte + 1 + words[k].size())) << words[k];
      EXPECT_GT(t.sources[s].weight, 0.9f);
    }
    EXPECT_LT(t.sink_mass, 0.01);
    byte += 1 + words[k].size();
  }
}

TEST(Explain, MaskedHeadsNeverCopy) {
  rhead::LoadedModel lm = rhead::load_builtin_model("induction");
  rhead::ExplainRequest req;
  req.context = induction_context();
  req.question = vault_needle().question;
  req.format.base_template = rhead::induction_prompt_template();
  req.heads = {{1, 1}, {1, 2}};
  rhead::HeadMask mask = rhead::parse_head_mask("heads:1-1", lm.model->config);
  req.mask = &mask;
  rhead::Session session(lm.model, {});
  const rhead::Explanation e = rhead::explain(session, *lm.tokenizer, req);
  // Head 1-2 alone still copies the needle; 1-1's argmax is never a source.
  EXPECT_EQ(e.answer, "cobalt ember thistle nine");
  for (const auto& t : e.tokens) {
    ASSERT_EQ(t.sources.size(), 1u);
    EXPECT_EQ(t.sources[0].head, (rhead::HeadId{1, 2}));
  }
}

TEST(Explain, SupportClassesFollowTheProbes) {
  rhead::LoadedModel lm = rhead::load_builtin_model("induction");
  const rhead::Tokenizer& tok = *lm.tokenizer;
  rhead::ProbeRecord rec;
  rec.n_obs = 1;
  rec.n_layer = 2;
  rec.n_head = 4;
  rec.argmax.assign(8, 0);
  rec.argmax_weight.assign(8, 0.5f);
  rec.span_mass.assign(8, 0.0f);
  rec.sink_mass.assign(8, 0.0f);
  const std::vector<int32_t> seq = {1, 40, 41, 42, 43, 44};  // document: positions [1, 5)
  const std::vector<rhead::HeadId> heads = {{1, 1}, {1, 2}};
  // Head 1-1 looks at position 3 (token 42), and the emitted token is 42: copied.
  rec.argmax[rec.index(0, 1, 1)] = 3;
  auto t = rhead::classify_answer_token(tok, rec, 42, seq, 1, 5, heads, nullptr, 0.5);
  EXPECT_EQ(t.support, rhead::Support::copied);
  ASSERT_EQ(t.sources.size(), 1u);
  EXPECT_EQ(t.sources[0].pos, 3);
  // Same argmax, but position 5 lies outside the document: not a copy.
  rec.argmax[rec.index(0, 1, 1)] = 5;
  t = rhead::classify_answer_token(tok, rec, 44, seq, 1, 5, heads, nullptr, 0.5);
  EXPECT_NE(t.support, rhead::Support::copied);
  // No copy; document mass 0.6 and 0.5 (mean 0.55): attended at tau 0.5, unsupported at 0.6.
  rec.span_mass[rec.index(0, 1, 1)] = 0.6f;
  rec.span_mass[rec.index(0, 1, 2)] = 0.5f;
  rec.sink_mass[rec.index(0, 1, 1)] = 0.2f;
  t = rhead::classify_answer_token(tok, rec, 44, seq, 1, 5, heads, nullptr, 0.5);
  EXPECT_EQ(t.support, rhead::Support::attended);
  EXPECT_NEAR(t.document_mass, 0.55, 1e-6);
  EXPECT_NEAR(t.sink_mass, 0.1, 1e-6);
  t = rhead::classify_answer_token(tok, rec, 44, seq, 1, 5, heads, nullptr, 0.6);
  EXPECT_EQ(t.support, rhead::Support::unsupported);
  // The masked head drops out of the means: 0.5 from head 1-2 alone.
  rhead::HeadMask mask(2, 4);
  mask.add(1, 1);
  t = rhead::classify_answer_token(tok, rec, 44, seq, 1, 5, heads, &mask, 0.5);
  EXPECT_NEAR(t.document_mass, 0.5, 1e-6);
  EXPECT_NEAR(t.sink_mass, 0.0, 1e-6);
  // Newlines and end of generation are not answer tokens.
  EXPECT_FALSE(rhead::is_answer_token(tok, tok.eos_id()));
  EXPECT_FALSE(rhead::is_answer_token(tok, tok.token_id("<0x0A>")));
  EXPECT_TRUE(rhead::is_answer_token(tok, tok.token_id("\xE2\x96\x81"
                                                       "cobalt")));
}

TEST(TokenByteRanges, EssaysMapEveryTokenBackToItsBytes) {
  const std::string essays = rhead::testing::shared_path("data/haystack/paul_graham_essays");
  const std::string model = rhead::testing::shared_path("models/niah-tiny/niah-tiny-f32.gguf");
  RHEAD_REQUIRE_FILE(essays);
  RHEAD_REQUIRE_FILE(model);
  const rhead::Tokenizer tok = rhead::Tokenizer::load(model);
  int files = 0;
  for (const auto& entry : fs::directory_iterator(essays)) {
    if (entry.path().extension() != ".txt" || ++files > 4) continue;
    const std::string text = read_text_file(entry.path().string()).substr(0, 6000);
    const std::vector<int32_t> ids = tok.encode(text, false, false);
    const auto ranges = rhead::token_byte_ranges(tok, text, ids);
    ASSERT_EQ(ranges.size(), ids.size());
    int64_t at = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      const std::string piece = tok.piece(ids[i]);
      const std::string got = text.substr(ranges[i].begin, ranges[i].end - ranges[i].begin);
      ASSERT_EQ(ranges[i].begin, at) << entry.path() << " token " << i;
      ASSERT_TRUE(got == piece || (i == 0 && " " + got == piece))
          << entry.path() << " token " << i << ": '" << got << "'";
      at = ranges[i].end;
    }
    EXPECT_EQ(at, static_cast<int64_t>(text.size())) << entry.path();
  }
  EXPECT_GT(files, 0);
}

struct InductionFiles {
  MkdtempDir dir{"rhead-explain-"};
  std::string scores = dir.sub("head_score.json");
  std::string context = dir.sub("context.txt");
  InductionFiles() {
    write_file(scores, kInductionScores);
    write_file(context, induction_context());
  }
  std::string args() const {
    return "explain -m builtin:induction --scores " + shell_quote(scores) + " --context " + shell_quote(context) +
           " --question " + shell_quote(vault_needle().question) + " --top-heads 3";
  }
};

TEST(ExplainCli, JsonIsInternallyConsistent) {
  InductionFiles f;
  const auto r = rhead_cli(f.args() + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["answer"], "cobalt ember thistle nine");
  EXPECT_EQ(j["top_heads"], nlohmann::json({"1-1", "1-2", "0-1"}));
  EXPECT_EQ(j["support_share"], 1.0);
  for (const auto& t : j["tokens"]) EXPECT_EQ(t["sources"].size(), 2u);  // 1-1 and 1-2; 0-1 looks back one token
  expect_consistent(j, read_text_file(f.context));
}

TEST(ExplainCli, NiahTinyJsonIsInternallyConsistent) {
  const std::string model = rhead::testing::shared_path("models/niah-tiny/niah-tiny-f32.gguf");
  const std::string essays = rhead::testing::shared_path("data/haystack/paul_graham_essays");
  RHEAD_REQUIRE_FILE(model);
  RHEAD_REQUIRE_FILE(essays);
  MkdtempDir dir("rhead-explain-tiny-");
  // Layer 2 holds the retrieval heads (models/README.md).
  write_file(
      dir.sub("scores.json"),
      R"({"0-0":[0],"0-1":[0],"0-2":[0],"0-3":[0],"0-4":[0],"0-5":[0],"1-0":[0],"1-1":[0],"1-2":[0],)"
      R"("1-3":[0],"1-4":[0],"1-5":[0],"2-0":[0.9],"2-1":[0.8],"2-2":[0.7],"2-3":[0.6],"2-4":[0.5],"2-5":[0.4]})");
  std::string essay;
  for (const auto& entry : fs::directory_iterator(essays))
    if (entry.path().extension() == ".txt") {
      essay = read_text_file(entry.path().string());
      break;
    }
  // About 60 words of an essay with the needle in the middle.
  size_t cut = 0;
  for (int words = 0; words < 60 && cut != std::string::npos; ++words) cut = essay.find(' ', cut + 1);
  const std::string head = essay.substr(0, cut);
  const size_t mid = head.rfind(". ", head.size() / 2);
  const std::string context =
      head.substr(0, mid + 2) + "The secret code of the wall is star oil nest. " + head.substr(mid + 2);
  write_file(dir.sub("context.txt"), context);
  const auto r = rhead_cli("explain -m " + shell_quote(model) + " --scores " + shell_quote(dir.sub("scores.json")) +
                           " --context " + shell_quote(dir.sub("context.txt")) +
                           " --question 'What is the secret code of the wall?' --prompt-template "
                           "$'{context}\\nQuestion: {question}\\nAnswer:' --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(r.output);
  EXPECT_FALSE(j["tokens"].empty());
  expect_consistent(j, context);
  // It restates the needle: some of its tokens are copied from it.
  EXPECT_GT(j["support_share"].get<double>(), 0.0) << j["answer"];
}

TEST(ExplainCli, KvPolicyOptionsApply) {
  // A 16-position window (sink 4) hides the needle from every head: whatever is copied comes
  // from the last 16 positions before each query (query of answer token k: prompt_tokens - 1 + k).
  // Keeping the whole cache for the induction heads (by score: top:2) restores the copies.
  InductionFiles f;
  auto r = rhead_cli(f.args() + " --kv-window 16 --kv-sink 4 --json 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  nlohmann::json j = nlohmann::json::parse(r.output);
  EXPECT_NE(j["answer"], "cobalt ember thistle nine");
  const int64_t first_query = j["document"]["prompt_tokens"].get<int64_t>() - 1;
  for (size_t k = 0; k < j["tokens"].size(); ++k)
    for (const auto& s : j["tokens"][k]["sources"]) {
      const int64_t pos = s["pos"];
      EXPECT_TRUE(pos < 4 || first_query + static_cast<int64_t>(k) - pos < 16) << "token " << k << " source " << pos;
    }
  r = rhead_cli(f.args() + " --kv-window 16 --kv-full top:2 --json 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["answer"], "cobalt ember thistle nine");
  EXPECT_EQ(j["support_share"], 1.0);
}

TEST(ExplainCli, TerminalViewWithoutColourWhenNotATerminal) {
  InductionFiles f;
  const auto r = rhead_cli(f.args());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find('\033'), std::string::npos);
  EXPECT_NE(r.output.find("answer:  cobalt ember thistle nine"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("support share 1.000 (4 of 4"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("copied"), std::string::npos);
}

// One line on stderr, nothing on stdout, exit status non-zero, and the line names `what`.
void expect_one_line_error(const std::string& args, const std::string& what) {
  const auto r = run_command(shell_quote(rhead::testing::rhead_binary()) + " " + args + " 2>&1 >/dev/null");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.exit_code, -1) << "crashed: " << r.output;
  ASSERT_FALSE(r.output.empty());
  EXPECT_EQ(r.output.find('\n'), r.output.size() - 1) << r.output;
  EXPECT_NE(r.output.find(what), std::string::npos) << r.output;
}

TEST(ExplainCli, OneLineErrors) {
  InductionFiles f;
  const std::string base = "explain -m builtin:induction --context " + shell_quote(f.context);
  const std::string question = " --question " + shell_quote(vault_needle().question);
  // Missing scores file.
  expect_one_line_error(base + question + " --scores " + shell_quote(f.dir.sub("nope.json")), "nope.json");
  // Scores of another model's shape (3 layers x 6 heads against 2 x 4).
  std::string other = "{";
  for (int l = 0; l < 3; ++l)
    for (int h = 0; h < 6; ++h)
      other += std::string(l + h ? "," : "") + "\"" + std::to_string(l) + "-" + std::to_string(h) + "\":[0.5]";
  write_file(f.dir.sub("other.json"), other + "}");
  expect_one_line_error(base + question + " --scores " + shell_quote(f.dir.sub("other.json")), "the model has 2 x 4");
  // A context longer than the model's 2048 positions.
  write_file(f.dir.sub("long.txt"), rhead::builtin_haystack(3000, 3));
  expect_one_line_error("explain -m builtin:induction --scores " + shell_quote(f.scores) + " --context " +
                            shell_quote(f.dir.sub("long.txt")) + question,
                        "too long");
  // An empty question.
  expect_one_line_error(base + " --scores " + shell_quote(f.scores) + " --question ''", "question is empty");
}

// The HTML page in Debian's chromium, driven by tests/browser/explain_page_check.js.
void check_page_in_browser(const std::string& args, const std::string& name) {
  const std::string browser_dir = std::string(RHEAD_SOURCE_DIR) + "/tests/browser";
  for (const std::string& need : {browser_dir + "/node_modules/playwright-core", std::string("/usr/bin/chromium"),
                                  std::string("/usr/bin/node")}) {
    if (!fs::exists(need)) {
      if (rhead::testing::in_ci()) FAIL() << "missing " << need << " (scripts/setup.sh installs it)";
      GTEST_SKIP() << "missing " << need << " (scripts/setup.sh installs it)";
    }
  }
  const fs::path artifacts = fs::current_path() / "explain_test_artifacts";
  fs::create_directories(artifacts);
  const std::string page = (artifacts / (name + ".html")).string();
  const std::string json = (artifacts / (name + ".json")).string();
  auto r = rhead_cli(args + " --json --html " + shell_quote(page) + " > " + shell_quote(json));
  ASSERT_EQ(r.exit_code, 0);
  const std::string html = read_text_file(page);
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  r = run_command("node " + shell_quote(browser_dir + "/explain_page_check.js") + " " + shell_quote(page) + " " +
                  shell_quote(json) + " " + shell_quote((artifacts / (name + ".png")).string()) + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"ok\":true"), std::string::npos) << r.output;
}

TEST(ExplainPage, HoverHighlightsExactlyTheSourcesInChromium) {
  InductionFiles f;
  check_page_in_browser(f.args(), "induction");
}

TEST(ExplainPage, UnsupportedTokensAreMarkedInChromium) {
  // Both induction heads masked: nothing is copied, and with tau 1 nothing is attended.
  InductionFiles f;
  check_page_in_browser(f.args() + " --mask heads:1-1,1-2 --tau 1 -n 6", "masked");
  if (IsSkipped() || HasFatalFailure()) return;  // the helper skipped (no browser) or failed
  const nlohmann::json j = nlohmann::json::parse(read_text_file("explain_test_artifacts/masked.json"));
  ASSERT_FALSE(j["tokens"].empty());
  for (const auto& t : j["tokens"]) EXPECT_EQ(t["support"], "unsupported");
}

}  // namespace

namespace {

// rhead niah records support_share on every result line and its summary the AUROC.
TEST(NiahSupport, EveryLineHasSupportShareAndTheSummaryItsAuroc) {
  InductionFiles f;
  const std::string out = f.dir.sub("niah");
  const auto r = rhead_cli("niah -m builtin:induction --lengths 300:400:2 --depths 2 -q --scores " +
                           shell_quote(f.scores) + " --support-heads 2 -o " + shell_quote(out) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("support_auroc"), std::string::npos) << r.output;
  int lines = 0;
  std::istringstream in(read_text_file(out + "/results.jsonl"));
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    ASSERT_TRUE(j.contains("support_share")) << line;
    // The induction heads copy the needle's answer: every passed answer is fully supported.
    if (j["score"].get<double>() > 50) EXPECT_EQ(j["support_share"], 1.0) << line;
    ++lines;
  }
  EXPECT_EQ(lines, 2 * 2 * 3);
  const nlohmann::json summary = nlohmann::json::parse(read_text_file(out + "/summary.json"));
  ASSERT_FALSE(summary["masks"].empty());
  EXPECT_TRUE(summary["masks"][0].contains("support_auroc"));
  EXPECT_TRUE(summary["masks"][0].contains("support_share_passed"));
}

}  // namespace

namespace {

// AUROC by counting pairs (ties count half): the probability that a passed item's
// support_share is above a failed one's. Written here, apart from analysis/stats.
double pairwise_auroc(const std::vector<double>& pos, const std::vector<double>& neg) {
  double wins = 0;
  for (double p : pos)
    for (double n : neg) wins += p > n ? 1.0 : (p == n ? 0.5 : 0.0);
  return wins / static_cast<double>(pos.size() * neg.size());
}

// rhead qa records support_share per item and, per mask, support_auroc against F1 > 0.5. The
// items are NIAH-style passages for niah-tiny (a needle in some essay words; the question asks
// for it), short enough that some answers pass and some fail.
TEST(QaSupport, EveryItemHasSupportShareAndTheSummaryItsAurocAgainstF1) {
  const std::string model = rhead::testing::shared_path("models/niah-tiny/niah-tiny-f32.gguf");
  const std::string essay = rhead::testing::shared_path("data/haystack/paul_graham_essays/addiction.txt");
  const std::string needles = rhead::testing::shared_path("models/niah-tiny/needles.jsonl");
  RHEAD_REQUIRE_FILE(model);
  RHEAD_REQUIRE_FILE(essay);
  RHEAD_REQUIRE_FILE(needles);
  std::vector<std::string> words;
  {
    std::istringstream in(read_text_file(essay));
    for (std::string w; in >> w;) words.push_back(w);
  }
  MkdtempDir dir("rhead-qa-support-");
  const std::string items = dir.sub("items.jsonl");
  {
    std::ofstream out(items);
    std::istringstream in(read_text_file(needles));
    size_t k = 0;
    for (std::string line; std::getline(in, line);) {
      const nlohmann::json n = nlohmann::json::parse(line);
      for (size_t len : {15, 30, 45, 60}) {
        std::string context;
        for (size_t i = 0; i < len; ++i) {
          if (i == len / 2) context += n["needle"].get<std::string>() + " ";
          context += words.at(50 * k + i) + (i + 1 < len ? " " : "");
        }
        ++k;
        out << nlohmann::json{{"id", "item-" + std::to_string(k)},
                              {"context", context},
                              {"question", n["question"]},
                              {"answers", {n["real_needle"]}}}
                   .dump()
            << "\n";
      }
    }
  }
  const std::string run = dir.sub("qa");
  const auto r = rhead_cli("qa -m " + shell_quote(model) + " --data " + shell_quote(items) + " --no-chat -q -o " +
                           shell_quote(run) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("support_auroc"), std::string::npos) << r.output;
  std::vector<double> passed, failed;
  std::istringstream in(read_text_file(run + "/results.jsonl"));
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    ASSERT_TRUE(j.contains("support_share")) << line;
    const double share = j["support_share"].get<double>();
    EXPECT_GE(share, 0.0) << line;
    EXPECT_LE(share, 1.0) << line;
    (j["f1"].get<double>() > 0.5 ? passed : failed).push_back(share);
  }
  EXPECT_EQ(passed.size() + failed.size(), 12u);
  ASSERT_FALSE(passed.empty()) << "no answer passed: the test needs both outcomes";
  ASSERT_FALSE(failed.empty()) << "no answer failed: the test needs both outcomes";
  const nlohmann::json summary = nlohmann::json::parse(read_text_file(run + "/summary.json"));
  ASSERT_EQ(summary["masks"].size(), 1u);
  const nlohmann::json& m = summary["masks"][0];
  EXPECT_NEAR(m["support_auroc"].get<double>(), pairwise_auroc(passed, failed), 1e-12);
  double mp = 0, mf = 0;
  for (double v : passed) mp += v / static_cast<double>(passed.size());
  for (double v : failed) mf += v / static_cast<double>(failed.size());
  EXPECT_NEAR(m["support_share_passed"].get<double>(), mp, 1e-12);
  EXPECT_NEAR(m["support_share_failed"].get<double>(), mf, 1e-12);
}

}  // namespace

namespace {

rhead::ExplainedToken answer_token(const std::string& piece, std::vector<int64_t> source_positions, double doc_mass) {
  rhead::ExplainedToken t;
  t.piece = piece;
  t.document_mass = doc_mass;
  for (int64_t p : source_positions) {
    rhead::TokenSource s;
    s.pos = p;
    s.head = {1, 1};
    s.piece = piece;
    t.sources.push_back(s);
  }
  t.support = t.sources.empty() ? rhead::Support::unsupported : rhead::Support::copied;
  return t;
}

}  // namespace

TEST(Explain, VisibleCharactersSkipWhitespaceAndTheWordMark) {
  EXPECT_EQ(rhead::visible_characters("d"), 1);
  EXPECT_EQ(rhead::visible_characters("\xE2\x96\x81"
                                      "d"),
            1);
  EXPECT_EQ(rhead::visible_characters(" d\n"), 1);
  EXPECT_EQ(rhead::visible_characters("\xC3\xA9"), 1);  // one code point, two bytes
  EXPECT_EQ(rhead::visible_characters("\xE2\x96\x81"
                                      "st"),
            2);
  EXPECT_EQ(rhead::visible_characters("\xE2\x96\x81"), 0);
}

// The wrong answer "... stard": "star" copied from 40-41, then "d" from an unrelated "d" at 90.
TEST(Explain, ASingleCharacterCopyCountsOnlyInARun) {
  std::vector<rhead::ExplainedToken> tokens = {answer_token("\xE2\x96\x81"
                                                            "star",
                                                            {41}, 0.3),
                                               answer_token("d", {90}, 0.3)};
  rhead::apply_copy_length_rule(tokens, 0.5);
  EXPECT_EQ(tokens[0].support, rhead::Support::copied);  // two or more characters: kept alone
  EXPECT_EQ(tokens[1].support, rhead::Support::unsupported);
  EXPECT_TRUE(tokens[1].sources.empty());
  EXPECT_DOUBLE_EQ(rhead::support_share(tokens), 0.5);

  // The same "d" right after the copied "star" (position 42): a run, so it counts.
  tokens = {answer_token("\xE2\x96\x81"
                         "star",
                         {41}, 0.3),
            answer_token("d", {90, 42}, 0.3)};
  rhead::apply_copy_length_rule(tokens, 0.5);
  EXPECT_EQ(tokens[1].support, rhead::Support::copied);
  ASSERT_EQ(tokens[1].sources.size(), 1u);
  EXPECT_EQ(tokens[1].sources[0].pos, 42);

  // Two one-character tokens from consecutive positions form a run; a lone one with enough
  // document mass is attended.
  tokens = {answer_token("7", {12}, 0.9), answer_token("3", {13}, 0.9), answer_token("x", {70}, 0.9)};
  rhead::apply_copy_length_rule(tokens, 0.5);
  EXPECT_EQ(tokens[0].support, rhead::Support::copied);
  EXPECT_EQ(tokens[1].support, rhead::Support::copied);
  EXPECT_EQ(tokens[2].support, rhead::Support::attended);
}

TEST(Explain, SupportHeadsNeverIncludeHeadsScoringZero) {
  rhead::ModelConfig c;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_kv_head = 4;
  rhead::HeadGrid<double> scores(2, 4);
  scores.at(1, 1) = 1.0;
  scores.at(0, 1) = 0.05;
  const auto heads = rhead::support_heads_for(&scores, 10, c);
  EXPECT_EQ(heads, (std::vector<rhead::HeadId>{{1, 1}, {0, 1}}));
  EXPECT_EQ(rhead::support_heads_for(&scores, 1, c), (std::vector<rhead::HeadId>{{1, 1}}));
  EXPECT_EQ(rhead::support_heads_for(nullptr, 3, c).size(), 8u);  // no map: every head
  rhead::HeadGrid<double> zeros(2, 4);
  EXPECT_THROW(rhead::support_heads_for(&zeros, 10, c), rhead::Error);
}

TEST(ExplainCli, DefaultTopHeadsAreOnlyTheHeadsScoringAboveZero) {
  InductionFiles f;
  const std::string args = f.args();
  const auto r = rhead_cli(args.substr(0, args.find(" --top-heads")) + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  EXPECT_EQ(j["top_heads"], nlohmann::json({"1-1", "1-2", "0-1"}));  // of the default 10, three score above 0
}

// A reader that closes the pipe at once (`| head`, here `| true`) must not cost the page:
// the page is written before the terminal view, and a closed pipe does not kill rhead.
TEST(ExplainCli, ClosedPipeLosesNoFile) {
  InductionFiles f;
  const std::string page = f.dir.sub("page.html");
  const auto r = run_command(shell_quote(rhead::testing::rhead_binary()) + " " + f.args() + " --html " +
                             shell_quote(page) + " | true");
  ASSERT_TRUE(fs::exists(page)) << r.output;
  const std::string html = read_text_file(page);
  EXPECT_NE(html.find("</html>"), std::string::npos);
  EXPECT_NE(html.find("<table id=\"sources\">"), std::string::npos);  // sources shown without hovering
}

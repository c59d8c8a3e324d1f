// GSM8K-style items, few-shot prompts and numeric scoring.
#include "experiments/cot_task.h"

#include <chrono>
#include <sstream>

#include <nlohmann/json.hpp>

#include "io/text.h"
#include "io/error.h"
#include "io/jsonl.h"
#include "io/mapped_file.h"
#include "model/generate.h"
#include "text/qa_metrics.h"

namespace rhead {

using nlohmann::json;

namespace {

// data/arith_small.jsonl and data/arith_fewshot.jsonl; a test checks that they stay identical.
const char* const kArithSmall = R"jsonl(
{"id": "arith-01", "question": "Tom has 3 apples and buys 4 more. How many apples does he have now?", "answer": "Tom starts with 3 apples and buys 4 more, so he has 3 + 4 = <<3+4=7>>7 apples.\n#### 7"}
{"id": "arith-02", "question": "A box holds 6 eggs. How many eggs are in 5 boxes?", "answer": "Each box holds 6 eggs, so 5 boxes hold 5 * 6 = <<5*6=30>>30 eggs.\n#### 30"}
{"id": "arith-03", "question": "Sara had 20 stickers and gave 8 to her brother. How many stickers does she have left?", "answer": "She gave away 8 of 20 stickers, so she has 20 - 8 = <<20-8=12>>12 left.\n#### 12"}
{"id": "arith-04", "question": "A pencil costs 2 dollars. How much do 7 pencils cost?", "answer": "7 pencils cost 7 * 2 = <<7*2=14>>14 dollars.\n#### 14"}
{"id": "arith-05", "question": "There are 15 birds on a tree. 6 fly away and then 4 more land. How many birds are on the tree?", "answer": "After 6 fly away there are 15 - 6 = <<15-6=9>>9 birds.\nThen 4 land, so there are 9 + 4 = <<9+4=13>>13 birds.\n#### 13"}
{"id": "arith-06", "question": "Lena reads 5 pages every day. How many pages does she read in 6 days?", "answer": "She reads 5 pages a day for 6 days, so 5 * 6 = <<5*6=30>>30 pages.\n#### 30"}
{"id": "arith-07", "question": "A farmer has 24 cows and puts them into 4 equal fields. How many cows are in each field?", "answer": "24 cows in 4 equal fields gives 24 / 4 = <<24/4=6>>6 cows per field.\n#### 6"}
{"id": "arith-08", "question": "Max has 9 marbles. His friend gives him twice as many as he has. How many marbles does Max have now?", "answer": "His friend gives him 2 * 9 = <<2*9=18>>18 marbles.\nSo he has 9 + 18 = <<9+18=27>>27 marbles.\n#### 27"}
{"id": "arith-09", "question": "A shop sells 12 cakes in the morning and 9 in the afternoon. How many cakes does it sell in total?", "answer": "It sells 12 + 9 = <<12+9=21>>21 cakes.\n#### 21"}
{"id": "arith-10", "question": "Anna buys 3 books at 5 dollars each and pays with a 20 dollar note. How much change does she get?", "answer": "The books cost 3 * 5 = <<3*5=15>>15 dollars.\nHer change is 20 - 15 = <<20-15=5>>5 dollars.\n#### 5"}
{"id": "arith-11", "question": "A class has 8 boys and 11 girls. How many children are in the class?", "answer": "There are 8 + 11 = <<8+11=19>>19 children.\n#### 19"}
{"id": "arith-12", "question": "A rope is 50 meters long. Ben cuts off 18 meters. How long is the rope now?", "answer": "The rope is 50 - 18 = <<50-18=32>>32 meters long.\n#### 32"}
)jsonl";

const char* const kArithFewshot = R"jsonl(
{"question": "Mia has 5 cards and finds 3 more. How many cards does she have?", "answer": "Mia has 5 cards and finds 3 more, so she has 5 + 3 = <<5+3=8>>8 cards.\n#### 8"}
{"question": "A bag has 4 red balls and 2 blue balls. How many balls are in 3 such bags?", "answer": "One bag has 4 + 2 = <<4+2=6>>6 balls.\nThree bags have 3 * 6 = <<3*6=18>>18 balls.\n#### 18"}
{"question": "Jon had 10 cookies and ate 4. How many cookies are left?", "answer": "Jon ate 4 of 10 cookies, so 10 - 4 = <<10-4=6>>6 are left.\n#### 6"}
{"question": "Eight children share 16 oranges equally. How many oranges does each child get?", "answer": "Each child gets 16 / 8 = <<16/8=2>>2 oranges.\n#### 2"}
)jsonl";

}  // namespace

const char* builtin_arith_jsonl() { return kArithSmall + 1; }
const char* builtin_arith_fewshot_jsonl() { return kArithFewshot + 1; }

const char* cot_style_name(CotStyle s) { return s == CotStyle::answer_only ? "answer_only" : "cot"; }

CotStyle cot_style_from_name(const std::string& name) {
  if (name == "answer_only" || name == "answer") return CotStyle::answer_only;
  if (name == "cot" || name == "chain_of_thought") return CotStyle::chain_of_thought;
  throw Error("prompting style '" + name + "': expected answer_only or cot");
}

std::vector<CotItem> parse_cot_jsonl(const std::string& text, const std::string& where) {
  std::vector<CotItem> items;
  for_each_jsonl_object(text, where, [&](const json& j, const std::string& at, int n) {
    for (const char* key : {"question", "answer"})
      if (!j.contains(key) || !j[key].is_string()) throw Error(at + ": \"" + key + "\" must be a string");
    CotItem it;
    it.question = j["question"];
    it.answer = j["answer"];
    const size_t hashes = it.answer.rfind("####");
    const std::optional<double> gold = extract_gold_number(it.answer);
    if (hashes == std::string::npos || !gold)
      throw Error(at + ": \"answer\" must end with \"#### N\", N one number (got \"" +
                  printable(trim(it.answer.substr(hashes == std::string::npos ? it.answer.size() : hashes + 4))) +
                  "\")");
    it.final_answer = trim(it.answer.substr(hashes + 4));
    it.gold = *gold;
    it.id = jsonl_item_id(j, n);
    items.push_back(std::move(it));
  });
  if (items.empty()) throw Error(where + ": no items");
  return items;
}

std::vector<CotItem> read_cot_items(const std::string& path) { return parse_cot_jsonl(read_text_file(path), path); }

std::string cot_reasoning(const std::string& answer) {
  std::string body = answer.substr(0, answer.rfind("####"));
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body.compare(i, 2, "<<") == 0) {
      const size_t close = body.find(">>", i + 2);
      if (close != std::string::npos) {
        i = close + 1;
        continue;
      }
    }
    const char ch = body[i] == '\n' || body[i] == '\r' ? ' ' : body[i];
    if (ch == ' ' && (out.empty() || out.back() == ' ')) continue;
    out += ch;
  }
  return trim(out);
}

std::string cot_prompt_text(const std::vector<CotItem>& shots, const std::string& question, CotStyle style) {
  std::string p;
  for (const auto& s : shots) {
    p += "Question: " + s.question + "\nAnswer: ";
    if (style == CotStyle::chain_of_thought) p += cot_reasoning(s.answer) + " ";
    p += "The answer is " + s.final_answer + ".\n\n";
  }
  p += "Question: " + question + "\nAnswer:";
  return p;
}

CotAnswer run_cot_item(Session& session, const Tokenizer& tok, const PromptFormat& format, const std::string& prompt,
                       const CotItem& item, CotStyle style, const HeadMask* mask, int max_new_tokens) {
  const auto t0 = std::chrono::steady_clock::now();
  CotAnswer a;
  PromptFormat f = format;
  f.base_template = "{context}";
  f.chat_user_template = "{context}";
  const PromptFrame frame = make_prompt_frame(tok, f, "");
  std::vector<int32_t> tokens = frame.before;
  const std::vector<int32_t> body = encode_fragment(tok, prompt, false);
  tokens.insert(tokens.end(), body.begin(), body.end());
  tokens.insert(tokens.end(), frame.after.begin(), frame.after.end());
  if (static_cast<int64_t>(tokens.size()) + max_new_tokens > session.capacity())
    throw Error("item " + item.id + ": the prompt (" + std::to_string(tokens.size()) + " tokens) and " +
                std::to_string(max_new_tokens) + " new tokens exceed the context of " +
                std::to_string(session.capacity()) + " tokens; use fewer shots or --max-new-tokens");
  session.truncate(0);
  std::vector<int32_t> out;
  std::string text;
  GreedyOptions go;
  go.max_new_tokens = max_new_tokens;
  go.mask = mask && !mask->empty() ? mask : nullptr;
  go.on_token = [&](const DecodeStep& step) {
    if (tok.is_end_of_generation(step.token)) return false;
    out.push_back(step.token);
    text = tok.decode(out);
    if (style == CotStyle::answer_only) return text.find('\n') == std::string::npos;
    return text.find("\n\n") == std::string::npos && text.find("Question:") == std::string::npos;
  };
  const GenerateResult g = generate_greedy(session, tokens, go);
  // Cut at the stop marker so the next exemplar's numbers never count.
  for (const char* stop : {"\n\n", "Question:"})
    if (const size_t at = text.find(stop); at != std::string::npos) text.resize(at);
  if (style == CotStyle::answer_only)
    if (const size_t at = text.find('\n'); at != std::string::npos) text.resize(at);
  a.completion = trim(text);
  a.predicted = extract_predicted_number(a.completion);
  a.correct = a.predicted && numbers_equal(*a.predicted, item.gold);
  a.prompt_tokens = static_cast<int64_t>(tokens.size());
  a.generated_tokens = static_cast<int64_t>(g.tokens.size());
  a.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return a;
}

}  // namespace rhead

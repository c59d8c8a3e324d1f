// Extractive QA items, prompts and scoring.
#include "experiments/qa_task.h"

#include <algorithm>
#include <chrono>
#include <sstream>

#include <nlohmann/json.hpp>

#include "io/text.h"
#include "io/error.h"
#include "io/jsonl.h"
#include "io/mapped_file.h"
#include "support/explain.h"
#include "model/generate.h"
#include "text/qa_metrics.h"

namespace rhead {

using nlohmann::json;

namespace {

// data/qa_small.jsonl; a test checks that the two stay identical.
const char* const kQaSmall = R"jsonl(
{"id": "qa-01", "context": "The lighthouse on Marrow Point was built in 1871 by a stonemason named Elias Penhale. Its lamp was first lit with whale oil, and later with kerosene. The keeper's cottage beside it now houses a small museum of ship models.", "question": "Who built the lighthouse on Marrow Point?", "answers": ["Elias Penhale", "a stonemason named Elias Penhale"]}
{"id": "qa-02", "context": "Every spring the village of Oldbury holds a cheese rolling race down Gallow Hill. The winner keeps the wheel of cheese, which weighs about four kilograms. Last year the race was won by a baker called Mina Forde.", "question": "Who won the cheese rolling race last year?", "answers": ["Mina Forde", "a baker called Mina Forde"]}
{"id": "qa-03", "context": "The river Tamsel rises in the Brenn hills and flows north for ninety miles before it reaches the sea at Caldmouth. Barges once carried wool down the river to the port, where it was loaded onto ships bound for Flanders.", "question": "Where does the river Tamsel reach the sea?", "answers": ["Caldmouth", "at Caldmouth"]}
{"id": "qa-04", "context": "Our school garden grows beans, carrots and pumpkins. The pumpkins are planted in May and picked in October. The children sell the largest pumpkin at the autumn fair and use the money to buy new seeds.", "question": "When are the pumpkins picked?", "answers": ["October", "in October"]}
{"id": "qa-05", "context": "The old clock tower in the market square stopped at a quarter past three during the great storm. For twelve years nobody repaired it, until a retired engineer named Oskar Lind offered to fix the gears for free.", "question": "Who offered to fix the clock tower?", "answers": ["Oskar Lind", "a retired engineer named Oskar Lind"]}
{"id": "qa-06", "context": "Hazel kept three animals on her farm: a grey donkey called Pepper, a goat called Bramble and a very old sheepdog called Moss. Pepper carried firewood from the forest every morning.", "question": "What was the name of the donkey?", "answers": ["Pepper"]}
{"id": "qa-07", "context": "The first bridge across the bay was made of wood and washed away in a flood. The second, built of iron in 1902, still stands. It is painted green every ten years by a crew of twelve workers.", "question": "What was the second bridge made of?", "answers": ["iron"]}
{"id": "qa-08", "context": "In the story, the young sailor Tobin finds a map inside a glass bottle on the beach. The map shows an island shaped like a crescent moon, where a chest of silver coins is said to be buried under a lone palm tree.", "question": "Where did Tobin find the map?", "answers": ["inside a glass bottle", "inside a glass bottle on the beach", "a glass bottle"]}
{"id": "qa-09", "context": "The museum's most famous painting shows a red fox asleep in the snow. It was painted by Ada Wren in the winter of 1889, when she lived in a cabin near the northern lakes.", "question": "What animal does the famous painting show?", "answers": ["a red fox", "red fox", "fox"]}
{"id": "qa-10", "context": "Startups that grow quickly often hire before they have a clear plan. The founders of one small company decided instead to stay at four people for two years, and they spent the money they saved on better servers.", "question": "What did the founders spend the saved money on?", "answers": ["better servers", "servers"]}
{"id": "qa-11", "context": "The train to Westhaven leaves from platform nine at half past seven every evening. It stops at Linford and Ashcombe, and reaches Westhaven just before midnight.", "question": "Which platform does the train to Westhaven leave from?", "answers": ["platform nine", "nine", "9"]}
{"id": "qa-12", "context": "Grandmother's soup recipe needs two onions, a handful of barley, one carrot and a spoon of dried thyme. She always said the secret was to let it simmer for three hours.", "question": "How long should the soup simmer?", "answers": ["three hours", "for three hours"]}
)jsonl";

}  // namespace

const char* builtin_qa_jsonl() { return kQaSmall + 1; }  // skip the newline after R"jsonl(

std::vector<QaItem> parse_qa_jsonl(const std::string& text, const std::string& where) {
  std::vector<QaItem> items;
  for_each_jsonl_object(text, where, [&](const json& j, const std::string& at, int n) {
    QaItem it;
    for (const char* key : {"context", "question"})
      if (!j.contains(key) || !j[key].is_string()) throw Error(at + ": \"" + key + "\" must be a string");
    it.context = j["context"];
    it.question = j["question"];
    if (!j.contains("answers") || !j["answers"].is_array() || j["answers"].empty())
      throw Error(at + ": \"answers\" must be a non-empty list of strings");
    for (const auto& a : j["answers"]) {
      if (!a.is_string()) throw Error(at + ": \"answers\" must be a non-empty list of strings");
      it.answers.push_back(a);
    }
    it.id = jsonl_item_id(j, n);
    items.push_back(std::move(it));
  });
  if (items.empty()) throw Error(where + ": no QA items");
  return items;
}

std::vector<QaItem> read_qa_items(const std::string& path) { return parse_qa_jsonl(read_text_file(path), path); }

std::vector<int32_t> qa_prompt_tokens(const Tokenizer& tok, const PromptFormat& format, const QaItem& item,
                                      int64_t max_prompt_tokens, int64_t& dropped) {
  const PromptFrame frame = make_prompt_frame(tok, format, item.question);
  std::vector<int32_t> context = encode_fragment(tok, item.context, false);
  const int64_t room = max_prompt_tokens - static_cast<int64_t>(frame.before.size() + frame.after.size());
  if (room <= 0) throw Error("QA item " + item.id + ": the prompt template alone does not fit the context window");
  dropped = std::max<int64_t>(0, static_cast<int64_t>(context.size()) - room);
  std::vector<int32_t> tokens = frame.before;
  tokens.insert(tokens.end(), context.begin() + dropped, context.end());
  tokens.insert(tokens.end(), frame.after.begin(), frame.after.end());
  return tokens;
}

QaAnswer run_qa_item(Session& session, const Tokenizer& tok, const PromptFormat& format, const QaItem& item,
                     const HeadMask* mask, int max_new_tokens, const std::vector<HeadId>& support_heads) {
  const auto t0 = std::chrono::steady_clock::now();
  QaAnswer a;
  const std::vector<int32_t> prompt =
      qa_prompt_tokens(tok, format, item, session.capacity() - max_new_tokens - 1, a.context_tokens_dropped);
  session.truncate(0);
  std::vector<int32_t> answer;
  GreedyOptions go;
  go.max_new_tokens = max_new_tokens;
  go.mask = mask && !mask->empty() ? mask : nullptr;
  // The context's positions in the prompt: after the frame's opening, before its closing.
  const PromptFrame frame = make_prompt_frame(tok, format, item.question);
  const int64_t context_begin = static_cast<int64_t>(frame.before.size());
  const int64_t context_end = static_cast<int64_t>(prompt.size() - frame.after.size());
  const bool track_support = !support_heads.empty();
  AnswerSupport support(tok, support_heads, context_begin, context_end, go.mask);
  ProbeRequest probes;
  std::vector<int32_t> sequence = prompt;
  if (track_support) {
    support.request(probes);
    go.probes = &probes;
  }
  go.on_token = [&](const DecodeStep& step) {
    if (track_support) support.observe(*step.probes, step.token, sequence);
    sequence.push_back(step.token);
    if (tok.is_end_of_generation(step.token)) return false;
    answer.push_back(step.token);
    return tok.piece(step.token).find('\n') == std::string::npos;
  };
  const GenerateResult g = generate_greedy(session, prompt, go);
  std::string text = tok.decode(answer);
  const size_t nl = text.find('\n');
  if (nl != std::string::npos) text.resize(nl);
  a.prediction = trim(text);
  a.exact_match = squad_exact_match(a.prediction, item.answers);
  a.f1 = squad_f1(a.prediction, item.answers);
  a.prompt_tokens = static_cast<int64_t>(prompt.size());
  a.generated_tokens = static_cast<int64_t>(g.tokens.size());
  if (track_support) a.support_share = support.share();
  a.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return a;
}

}  // namespace rhead

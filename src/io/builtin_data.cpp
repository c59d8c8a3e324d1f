// Embedded haystack, needles and lexicon. The filler avoids the word "is" and every needle
// word, so a needle is the only place its answer words occur.
#include "io/builtin_data.h"

#include <set>
#include <sstream>

namespace rhead {
namespace {

const std::vector<std::string> kAdjectives = {"old",  "quiet",  "small",  "green",   "bright", "slow",  "warm",
                                              "tall", "narrow", "gentle", "distant", "busy",   "plain", "wide",
                                              "cold", "soft",   "early",  "late",    "long",   "round"};
const std::vector<std::string> kNouns = {
    "river",   "town",   "field", "road",   "garden", "market", "bridge", "forest", "village", "farmer",
    "teacher", "window", "hill",  "boat",   "train",  "school", "wall",   "letter", "morning", "house",
    "painter", "dog",    "shop",  "valley", "cloud",  "lamp",   "table",  "street", "baker",   "orchard"};
const std::vector<std::string> kVerbs = {"runs",   "waits", "turns", "rests", "moves",  "leans",
                                         "stays",  "grows", "sings", "works", "walks",  "sleeps",
                                         "shines", "falls", "rises", "opens", "stands", "drifts"};
const std::vector<std::string> kPrepositions = {"near",   "past",   "under", "over",   "beside",
                                                "behind", "across", "along", "around", "toward"};
const std::vector<std::string> kOpeners = {"Each day",     "In the evening", "After the rain", "By noon",
                                           "Every spring", "Later",          "Sometimes",      "At dawn",
                                           "Now and then", "Before winter"};

const std::string& pick(SplitMix64& rng, const std::vector<std::string>& v) { return v[rng.below(v.size())]; }

}  // namespace

std::string builtin_haystack(int64_t n_words, uint64_t seed) {
  SplitMix64 rng(seed);
  std::ostringstream out;
  int64_t words = 0;
  int sentences_in_paragraph = 0;
  while (words < n_words) {
    std::string s;
    if (rng.below(3) == 0) {
      s = pick(rng, kOpeners) + " the ";
      words += 3;
    } else {
      s = "The ";
      words += 1;
    }
    s += pick(rng, kAdjectives) + " " + pick(rng, kNouns) + " " + pick(rng, kVerbs) + " " + pick(rng, kPrepositions) +
         " the " + pick(rng, kAdjectives) + " " + pick(rng, kNouns) + ".";
    words += 7;
    out << s;
    if (++sentences_in_paragraph == 6) {
      out << "\n\n";
      sentences_in_paragraph = 0;
    } else {
      out << " ";
    }
  }
  return out.str();
}

const std::vector<Needle>& builtin_needles() {
  static const std::vector<Needle> needles = {
      {"The secret ingredient in Grandma Velda's lighthouse stew is smoked cardamom and three drops of maple vinegar.",
       "What is the secret ingredient in Grandma Velda's lighthouse stew?",
       "smoked cardamom and three drops of maple vinegar"},
      {"The password to the observatory on Mount Quillon is violet otter seventeen.",
       "What is the password to the observatory on Mount Quillon?", "violet otter seventeen"},
      {"The first ship to reach the harbor of Tessaly carried forty crates of copper bells.",
       "What did the first ship to reach the harbor of Tessaly carry?", "forty crates of copper bells"},
  };
  return needles;
}

const Needle& sandwich_needle() {
  static const Needle needle{
      "The best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny day.",
      "What is the best thing to do in San Francisco?", "eat a sandwich and sit in Dolores Park on a sunny day"};
  return needle;
}

const std::vector<Needle>& induction_needles() {
  static const std::vector<Needle> needles = {
      {"The vault code of Captain Orrin is cobalt ember thistle nine\n", "The vault code of Captain Orrin is",
       "cobalt ember thistle nine"},
      {"The password to the observatory on Mount Quillon is violet otter seventeen\n",
       "The password to the observatory on Mount Quillon is", "violet otter seventeen"},
      {"The lantern maker of Tessaly is named Wren Halloway Brightwater\n", "The lantern maker of Tessaly is named",
       "Wren Halloway Brightwater"},
  };
  return needles;
}

const char* induction_prompt_template() { return "{context}\n{question}"; }

std::vector<std::string> builtin_lexicon() {
  std::set<std::string> words;
  auto add_text = [&](const std::string& text) {
    std::string w;
    for (char c : text) {
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '\'') {
        w += c;
      } else {
        if (!w.empty()) words.insert(w);
        w.clear();
      }
    }
    if (!w.empty()) words.insert(w);
  };
  for (const auto* list : {&kAdjectives, &kNouns, &kVerbs, &kPrepositions, &kOpeners})
    for (const auto& w : *list) add_text(w);
  add_text("The the");
  for (const auto* set : {&builtin_needles(), &induction_needles()})
    for (const auto& n : *set) add_text(n.needle + " " + n.question);
  add_text(sandwich_needle().needle + " " + sandwich_needle().question);
  add_text("Based on the content of the book, Question: Answer: book");
  return {words.begin(), words.end()};
}

}  // namespace rhead

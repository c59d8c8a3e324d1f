// ROUGE-1 and the Porter stemmer against expectations generated with NLTK's
// PorterStemmer and rouge_score's rules (scripts/make_rouge_expected.py).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

#include "text/porter_stemmer.h"
#include "text/rouge.h"
#include "test_support.h"

namespace {

using rhead::porter_stem;
using rhead::rouge1;
using rhead::rouge_tokenize;

TEST(PorterStem, MatchesNltkOnEssayVocabularyAndTrickyWords) {
  const std::string path = rhead::testing::test_data_path("rouge/porter_expected.tsv");
  std::ifstream in(path);
  ASSERT_TRUE(in) << "cannot open " << path;
  std::string line;
  size_t checked = 0, mismatches = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    const std::string word = line.substr(0, tab);
    const std::string expected = line.substr(tab + 1);
    const std::string got = porter_stem(word);
    if (got != expected) {
      ++mismatches;
      ADD_FAILURE() << "porter_stem(\"" << word << "\") = \"" << got << "\", NLTK gives \"" << expected << "\"";
      if (mismatches > 30) break;
    }
    ++checked;
  }
  EXPECT_GT(checked, 5000u);
  EXPECT_EQ(mismatches, 0u);
}

TEST(PorterStem, PaperAndNltkExamples) {
  // Examples from Porter's paper, with NLTK's departures where they apply.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"caresses", "caress"},
      {"ponies", "poni"},
      {"ties", "tie"},
      {"caress", "caress"},
      {"cats", "cat"},
      {"feed", "feed"},
      {"agreed", "agre"},
      {"plastered", "plaster"},
      {"bled", "bled"},
      {"motoring", "motor"},
      {"sing", "sing"},
      {"conflated", "conflat"},
      {"hopping", "hop"},
      {"falling", "fall"},
      {"hissing", "hiss"},
      {"filing", "file"},
      {"happy", "happi"},
      {"enjoy", "enjoy"},
      {"sky", "sky"},
      {"skies", "sky"},
      {"dying", "die"},
      {"lying", "lie"},
      {"news", "news"},
      {"innings", "inning"},
      {"died", "die"},
      {"spied", "spi"},
      {"flies", "fli"},
      {"relational", "relat"},
      {"generalization", "gener"},
      {"a", "a"},
      {"Is", "is"},
      {"OX", "ox"},
      {"Running", "run"},
      {"", ""},
  };
  for (const auto& [word, stem] : cases) EXPECT_EQ(porter_stem(word), stem) << word;
}

TEST(PorterStem, IrregularPoolIsMatchedBeforeLowerCasing) {
  // NLTK looks the pool up with the word as given: "Skies" is stemmed by the rules.
  EXPECT_EQ(porter_stem("skies"), "sky");
  EXPECT_EQ(porter_stem("Skies"), "ski");
  EXPECT_EQ(porter_stem("News"), "new");
}

TEST(PorterStem, InvalidUtf8PassesThrough) {
  const std::string bad = "ab\xff\xfe";
  EXPECT_EQ(porter_stem(bad), bad);
}

TEST(RougeTokenize, FollowsRougeScoreRules) {
  EXPECT_EQ(rouge_tokenize("The CAT's  e-mail, 3.14!", false),
            (std::vector<std::string>{"the", "cat", "s", "e", "mail", "3", "14"}));
  EXPECT_EQ(rouge_tokenize("Running dogs ran quickly", true),
            (std::vector<std::string>{"run", "dog", "ran", "quickli"}));
  // Tokens of 3 characters or fewer are not stemmed.
  EXPECT_EQ(rouge_tokenize("ies ied dies", true), (std::vector<std::string>{"ies", "ied", "die"}));
  // Non-ASCII letters separate tokens; U+0130 and the Kelvin sign lower-case to ASCII.
  EXPECT_EQ(rouge_tokenize("caf\xc3\xa9 na\xc3\xafve", false), (std::vector<std::string>{"caf", "na", "ve"}));
  EXPECT_EQ(rouge_tokenize("\xc4\xb0stanbul", false), (std::vector<std::string>{"i", "stanbul"}));
  EXPECT_EQ(rouge_tokenize("\xe2\x84\xaa"
                           "elvin",
                           false),
            (std::vector<std::string>{"kelvin"}));
  EXPECT_TRUE(rouge_tokenize("", true).empty());
  EXPECT_TRUE(rouge_tokenize(" ... ", true).empty());
}

TEST(Rouge1, HandComputed) {
  // The answer span has 12 tokens ("a" twice).
  const std::string needle = "eat a sandwich and sit in Dolores Park on a sunny day";
  EXPECT_DOUBLE_EQ(rouge1(needle, needle).recall, 1.0);
  EXPECT_DOUBLE_EQ(rouge1(needle, "Eat a sandwich.").recall, 3.0 / 12.0);
  EXPECT_DOUBLE_EQ(rouge1(needle, "Eat a sandwich.").precision, 1.0);
  // "a" occurs twice in the reference; a prediction with it once gets one match.
  const auto s = rouge1("a a b", "a c");
  EXPECT_DOUBLE_EQ(s.recall, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.precision, 0.5);
  EXPECT_DOUBLE_EQ(s.f, 2 * 0.5 * (1.0 / 3.0) / (0.5 + 1.0 / 3.0));
  // Stemming makes inflections match.
  EXPECT_DOUBLE_EQ(rouge1("sitting in parks", "sits in the park").recall, 1.0);
  EXPECT_LT(rouge1("sitting in parks", "sits in the park", false).recall, 1.0);
  // Empty sides give 0.
  EXPECT_DOUBLE_EQ(rouge1("", "anything").recall, 0.0);
  EXPECT_DOUBLE_EQ(rouge1("something", "").recall, 0.0);
  EXPECT_DOUBLE_EQ(rouge1("something", "").f, 0.0);
  EXPECT_DOUBLE_EQ(rhead::rouge1_recall(needle, "sit in Dolores Park"), 4.0 / 12.0);
}

TEST(Rouge1, MatchesGeneratedExpectations) {
  const std::string path = rhead::testing::test_data_path("rouge/rouge_expected.jsonl");
  std::ifstream in(path);
  ASSERT_TRUE(in) << "cannot open " << path;
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto row = nlohmann::json::parse(line);
    const std::string ref = row.at("reference"), pred = row.at("prediction");
    SCOPED_TRACE("pair " + std::to_string(n) + ": reference=" + ref + " | prediction=" + pred);
    EXPECT_EQ(rouge_tokenize(ref, true), row.at("ref_tokens").get<std::vector<std::string>>());
    EXPECT_EQ(rouge_tokenize(pred, true), row.at("pred_tokens").get<std::vector<std::string>>());
    const auto s = rouge1(ref, pred);
    EXPECT_NEAR(s.recall, row.at("recall").get<double>(), 1e-9);
    EXPECT_NEAR(s.precision, row.at("precision").get<double>(), 1e-9);
    EXPECT_NEAR(s.f, row.at("f").get<double>(), 1e-9);
    ++n;
  }
  EXPECT_GE(n, 300u);
}

}  // namespace

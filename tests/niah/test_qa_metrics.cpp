// SQuAD exact match / F1 and GSM8K numeric answer extraction on hand-checked cases.
// The normalisation cases were also checked against SQuAD's official Python
// normalize_answer.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "text/qa_metrics.h"

namespace {

using namespace rhead;

TEST(SquadNormalize, OfficialRules) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"The Cat!", "cat"},
      {"  An apple a day, keeps THE doctor away. ", "apple day keeps doctor away"},
      {"a", ""},
      {"anthem", "anthem"},
      {"the-end", "theend"},  // punctuation goes before articles are looked for
      {"the_end", "theend"},
      {"The (2nd) place", "2nd place"},
      {"Theatre and a man", "theatre and man"},
      {"it's", "its"},
      {"U.S.A.", "usa"},
      {"the\xe2\x80\x94"
       "end",
       "\xe2\x80\x94"
       "end"},  // an em dash is not a word character
      {"caf\xc3\xa9 the", "caf\xc3\xa9"},
      {"Tab\tand\nnewline", "tab and newline"},
      {"\xc3\x89"
       "COLE",
       "\xc3\xa9"
       "cole"},
      {"a\xc2\xa0the\xe3\x80\x80"
       "an x",
       "x"},                           // no-break and ideographic spaces split
      {"e\xcc\x81 a", "e\xcc\x81"},    // a combining accent ends a word
      {"A\xc2\xb2 the", "a\xc2\xb2"},  // a superscript digit is a word character
      {"", ""},
  };
  for (const auto& [in, out] : cases) EXPECT_EQ(squad_normalize(in), out) << in;
}

TEST(SquadExactMatch, MaxOverGolds) {
  EXPECT_EQ(squad_exact_match("The Cat.", {"cat"}), 1.0);
  EXPECT_EQ(squad_exact_match("cats", {"cat"}), 0.0);
  EXPECT_EQ(squad_exact_match("Dolores Park", {"the park", "dolores park!"}), 1.0);
  EXPECT_EQ(squad_exact_match("anything", {}), 0.0);
  EXPECT_EQ(squad_exact_match("the", {"a"}), 1.0);  // both normalise to ""
}

TEST(SquadF1, TokenOverlap) {
  // pred {cat, sat}, gold {cat, sat, down}: p = 1, r = 2/3, F1 = 0.8.
  EXPECT_NEAR(squad_f1("the cat sat", {"a cat sat down"}), 0.8, 1e-12);
  EXPECT_NEAR(squad_f1("the cat sat", {"dog", "cat sat"}), 1.0, 1e-12);
  // Counts are clipped: pred {cat x3}, gold {cat}: p = 1/3, r = 1, F1 = 0.5.
  EXPECT_NEAR(squad_f1("cat cat cat", {"cat"}), 0.5, 1e-12);
  EXPECT_NEAR(squad_f1("Eat a sandwich in Dolores Park", {"eat a sandwich and sit in Dolores Park"}),
              2.0 * 1.0 * (5.0 / 7.0) / (1.0 + 5.0 / 7.0), 1e-12);
  EXPECT_EQ(squad_f1("dog", {"cat"}), 0.0);
  EXPECT_EQ(squad_f1("", {"the"}), 1.0);  // both empty after normalisation
  EXPECT_EQ(squad_f1("", {"cat"}), 0.0);
  EXPECT_EQ(squad_f1("cat", {""}), 0.0);
  EXPECT_EQ(squad_f1("cat", {}), 0.0);
}

TEST(Gsm8kGold, NumberAfterHashes) {
  EXPECT_EQ(extract_gold_number("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
                                "Natalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72"),
            72.0);
  EXPECT_EQ(extract_gold_number("#### 1,234"), 1234.0);
  EXPECT_EQ(extract_gold_number("#### -5"), -5.0);
  EXPECT_EQ(extract_gold_number("#### $18.00"), 18.0);
  EXPECT_EQ(extract_gold_number("so 3 #### 3.5"), 3.5);
  EXPECT_EQ(extract_gold_number(" 42 "), 42.0);  // a bare number is accepted
  EXPECT_EQ(extract_gold_number("$1,000."), 1000.0);
  EXPECT_FALSE(extract_gold_number("The total is 42").has_value());
  EXPECT_FALSE(extract_gold_number("####").has_value());
  // After the marker, one whole number or nothing: no exponent, no hex, no trailing word.
  EXPECT_FALSE(extract_gold_number("#### 1e5").has_value());
  EXPECT_FALSE(extract_gold_number("#### 12abc").has_value());
  EXPECT_FALSE(extract_gold_number("#### 0x10").has_value());
  EXPECT_FALSE(extract_gold_number("#### 3 apples").has_value());
  EXPECT_FALSE(extract_gold_number("").has_value());
}

TEST(Gsm8kPrediction, Extraction) {
  EXPECT_EQ(extract_predicted_number("The answer is 18."), 18.0);
  EXPECT_EQ(extract_predicted_number("5 + 3 = 8 boxes of 135. The answer is $1,080."), 1080.0);
  EXPECT_EQ(extract_predicted_number("Total 70 plus 2\n#### 72\nmore 5"), 72.0);
  EXPECT_EQ(extract_predicted_number("She has 3 apples and buys 5 more, so 8"), 8.0);
  EXPECT_EQ(extract_predicted_number("The answer is 18.0"), 18.0);
  EXPECT_EQ(extract_predicted_number("the ANSWER IS -7 degrees"), -7.0);
  EXPECT_EQ(extract_predicted_number("see pages 10-12"), 12.0);  // a hyphen after a digit is no sign
  EXPECT_EQ(extract_predicted_number("It drops to -3"), -3.0);
  // The first "The answer is" wins over text generated after it.
  EXPECT_EQ(extract_predicted_number("The answer is: 42 apples.\nQ: next? The answer is 7"), 42.0);
  // A marker with no number after it falls back to the last number.
  EXPECT_EQ(extract_predicted_number("We computed 12. The answer is unknown."), 12.0);
  EXPECT_EQ(extract_predicted_number("Add .5 cups"), 0.5);
  EXPECT_EQ(extract_predicted_number("about 3,000,000 people"), 3000000.0);
  EXPECT_EQ(extract_predicted_number("1, 2, 3"), 3.0);
  EXPECT_EQ(extract_predicted_number("costs $4.25 each"), 4.25);
  EXPECT_EQ(extract_predicted_number("The answer is 18. There are 20 left."), 18.0);
  EXPECT_FALSE(extract_predicted_number("no number here").has_value());
  EXPECT_FALSE(extract_predicted_number("").has_value());
}

TEST(Gsm8kCompare, NumericEquality) {
  EXPECT_TRUE(numbers_equal(18.0, 18.000));
  EXPECT_FALSE(numbers_equal(18.0, 18.5));
  EXPECT_TRUE(gsm8k_correct("so the answer is 18.0", "blah #### 18"));
  EXPECT_TRUE(gsm8k_correct("The answer is $1,080.", "#### 1080"));
  EXPECT_FALSE(gsm8k_correct("The answer is 17", "#### 18"));
  EXPECT_FALSE(gsm8k_correct("no idea", "#### 18"));
  EXPECT_FALSE(gsm8k_correct("18", "no marker here"));
}

}  // namespace

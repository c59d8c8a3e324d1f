// `rhead attn` end to end on builtin:induction: copying heads are marked, --json parses and
// carries the named fields, masks change what the model does, bad specs fail in one line.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.h"

namespace rhead {
namespace {

using Result = testing::CommandResult;

// Runs `rhead attn ARGS`; stdout only, or stdout and stderr together.
Result attn(const std::string& args, bool with_stderr = false) {
  return testing::run_command("'" + testing::rhead_binary() + "' attn " + args +
                              (with_stderr ? " 2>&1" : " 2>/dev/null"));
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The words of the pattern are whole tokens of the built-in vocabulary; the prompt repeats
// the first three, so an induction head can continue with the fourth, fifth, ...
const std::string kPrompt = "'river town field road garden market bridge forest village farmer river town field'";

TEST(CliAttn, MarksInductionHeadsAsCopying) {
  Result r = attn("-m builtin:induction -p " + kPrompt + " -n 5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("4 query heads (2 KV heads)"), std::string::npos) << r.output;
  // The continuation is copied from the pattern.
  EXPECT_NE(r.output.find("generated: \" road garden market bridge forest\""), std::string::npos) << r.output;
  int steps = 0;
  for (const std::string& line : lines(r.output)) {
    if (line.rfind("step ", 0) == 0) ++steps;
    if (line.rfind("  copying heads:", 0) == 0) EXPECT_EQ(line, "  copying heads: 1-1 1-2");
    if (line.rfind("  1-1 ", 0) == 0 || line.rfind("  1-2 ", 0) == 0) {
      EXPECT_NE(line.find(" copy"), std::string::npos) << line;
    }
    if (line.rfind("  0-", 0) == 0 || line.rfind("  1-0 ", 0) == 0 || line.rfind("  1-3 ", 0) == 0)
      EXPECT_EQ(line.find(" copy"), std::string::npos) << line;
  }
  EXPECT_EQ(steps, 5);
  EXPECT_NE(r.output.find("copy events per head (of 5 steps): 1-1:5 1-2:5"), std::string::npos) << r.output;
}

TEST(CliAttn, JsonHasNamedFieldsPerStep) {
  Result r = attn("-m builtin:induction -p " + kPrompt + " -n 4 --json --top-k 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::vector<std::string> ls = lines(r.output);
  ASSERT_EQ(ls.size(), 4u) << r.output;
  // Prompt: BOS + 13 words; the first step's query is the last prompt token, at position 13.
  for (size_t i = 0; i < ls.size(); ++i) {
    nlohmann::json j = nlohmann::json::parse(ls[i]);
    EXPECT_EQ(j.at("step"), static_cast<int>(i));
    EXPECT_EQ(j.at("position"), 13 + static_cast<int>(i));
    for (int l = 0; l < 2; ++l) {
      const std::string p = "blocks." + std::to_string(l) + ".attn.";
      for (const char* f : {"argmax", "argmax_weight", "argmax_token", "copy", "sink_mass", "topk", "topk_weight"}) {
        ASSERT_TRUE(j.contains(p + f)) << p + f;
        EXPECT_EQ(j.at(p + f).size(), 4u) << p + f;
      }
      EXPECT_EQ(j.at(p + "topk")[0].size(), 3u);
    }
    // Previous-token head 0-1 looks one back; induction heads 1-1 and 1-2 copy (position after
    // the earlier occurrence: words 3.. of the pattern sit at positions 4..).
    EXPECT_EQ(j.at("blocks.0.attn.argmax")[1], 12 + static_cast<int>(i));
    EXPECT_EQ(j.at("blocks.1.attn.argmax")[1], 4 + static_cast<int>(i));
    EXPECT_EQ(j.at("blocks.1.attn.argmax")[2], 4 + static_cast<int>(i));
    EXPECT_EQ(j.at("blocks.1.attn.copy"), (nlohmann::json{false, true, true, false}));
    EXPECT_EQ(j.at("blocks.1.attn.argmax_token")[1], j.at("token"));
    EXPECT_GT(j.at("blocks.1.attn.argmax_weight")[1].get<double>(), 0.9);
    EXPECT_EQ(j.at("blocks.1.attn.topk")[1][0], j.at("blocks.1.attn.argmax")[1]);
    EXPECT_EQ(j.at("copies"), (nlohmann::json{"1-1", "1-2"}));
  }
}

// Masking both induction heads (by name, or as layer 1's two KV groups) stops the copying,
// in every mode; masking one of them, or heads elsewhere, does not (each induction head
// alone writes enough of the token's code to win).
TEST(CliAttn, MaskingInductionHeadsStopsCopying) {
  const Result plain = attn("-m builtin:induction -p " + kPrompt + " -n 3 --json");
  ASSERT_EQ(plain.exit_code, 0);
  const nlohmann::json first = nlohmann::json::parse(lines(plain.output).at(0));
  for (const std::string mask : {"heads:1-1,1-2", "kv:1-0,1-1 --mask-phase all"})
    for (const std::string mode : {"uniform", "zero", "mean"}) {
      SCOPED_TRACE(mask + " " + mode);
      Result r = attn("-m builtin:induction -p " + kPrompt + " -n 3 --json --mask " + mask + " --mask-mode " + mode);
      ASSERT_EQ(r.exit_code, 0) << r.output;
      for (const std::string& line : lines(r.output)) {
        const nlohmann::json j = nlohmann::json::parse(line);
        EXPECT_NE(j.at("token"), first.at("token"));
        if (mode == "uniform" && mask.rfind("heads", 0) == 0) {
          EXPECT_EQ(j.at("blocks.1.attn.argmax")[1], 0);  // a uniform head's argmax is position 0
          EXPECT_EQ(j.at("blocks.1.attn.argmax")[2], 0);
        }
      }
    }
  Result other = attn("-m builtin:induction -p " + kPrompt + " -n 3 --json --mask heads:0-0,1-3");
  ASSERT_EQ(other.exit_code, 0);
  ASSERT_EQ(lines(other.output).size(), lines(plain.output).size());
  for (size_t i = 0; i < lines(plain.output).size(); ++i) {
    nlohmann::json a = nlohmann::json::parse(lines(other.output)[i]), b = nlohmann::json::parse(lines(plain.output)[i]);
    EXPECT_EQ(a.at("token"), b.at("token"));
    EXPECT_EQ(a.at("copies"), b.at("copies"));
    EXPECT_EQ(a.at("blocks.1.attn.masked"), (nlohmann::json{false, false, false, true}));
    EXPECT_FALSE(b.contains("blocks.1.attn.masked"));
  }
  Result one = attn("-m builtin:induction -p " + kPrompt + " -n 3 --json --mask kv:1-0 --mask-mode zero");
  ASSERT_EQ(one.exit_code, 0);
  for (const std::string& line : lines(one.output)) {
    const nlohmann::json j = nlohmann::json::parse(line);
    EXPECT_EQ(j.at("copies"), (nlohmann::json{"1-2"})) << line;
  }
  EXPECT_EQ(nlohmann::json::parse(lines(one.output).at(0)).at("token"), first.at("token"));
}

TEST(CliAttn, BadMaskSpecIsOneLineError) {
  for (const std::string spec : {"heads:2-0", "heads:1-4", "kv:0-2", "heads:x", "bogus:1", "heads:"}) {
    Result r = attn("-m builtin:induction -p 'river town' -n 2 --mask '" + spec + "'", true);
    EXPECT_NE(r.exit_code, 0) << spec;
    const std::vector<std::string> ls = lines(r.output);
    ASSERT_EQ(ls.size(), 1u) << spec << ":\n" << r.output;
    EXPECT_EQ(ls[0].rfind("error: mask '" + spec + "': ", 0), 0u) << ls[0];
  }
}

TEST(CliAttn, RealModelRuns) {
  const std::string path = testing::shared_path("models/niah-tiny/niah-tiny-f32.gguf");
  RHEAD_REQUIRE_FILE(path);
  Result r = attn("-m '" + path +
                  "' -p 'The secret code of the wall is star oil nest.\nQuestion: What is the "
                  "secret code of the wall?\nAnswer:' -n 6 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::vector<std::string> ls = lines(r.output);
  ASSERT_EQ(ls.size(), 6u);
  int copies = 0;
  for (const std::string& line : ls) {
    const nlohmann::json j = nlohmann::json::parse(line);
    EXPECT_EQ(j.at("blocks.2.attn.argmax").size(), 6u);
    copies += static_cast<int>(j.at("copies").size());
  }
  EXPECT_GT(copies, 0) << "niah-tiny restates the needle by copying";
}

}  // namespace
}  // namespace rhead

namespace rhead {
namespace {

// --heads and --layers keep only the chosen heads, in JSON and text; the header's prompt
// length is the one --json reports.
TEST(CliAttn, HeadAndLayerFiltersAndOnePromptLength) {
  Result r = attn("-m builtin:induction -p " + kPrompt + " -n 2 --json --layers 1 --heads 1-1,1-2,0-1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const std::string& line : lines(r.output)) {
    const nlohmann::json j = nlohmann::json::parse(line);
    EXPECT_FALSE(j.contains("blocks.0.attn.argmax")) << line;  // layer 0 filtered out
    EXPECT_EQ(j.at("blocks.1.attn.heads"), (nlohmann::json{1, 2}));
    EXPECT_EQ(j.at("blocks.1.attn.copy"), (nlohmann::json{true, true}));
    EXPECT_EQ(j.at("prompt_tokens"), 14);  // BOS + 13 words
    EXPECT_EQ(j.at("blocks.1.attn.argmax_piece")[0], j.at("piece"));
  }
  Result text = attn("-m builtin:induction -p " + kPrompt + " -n 2 --heads kv:0-0", true);
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("prompt: 14 tokens"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("showing 2 heads"), std::string::npos) << text.output;
  for (const std::string& line : lines(text.output)) EXPECT_NE(line.rfind("  1-", 0), 0u) << line;
  Result bad = attn("-m builtin:induction -p 'river town' -n 1 --layers 5", true);
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("error: --layers '5': layer 5 does not exist"), std::string::npos) << bad.output;
}

// --top-k lists each position with its token.
TEST(CliAttn, TopKPositionsCarryTheirTokens) {
  Result r = attn("-m builtin:induction -p " + kPrompt + " -n 1 --heads 1-1 --top-k 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Step 0 emits " road" copied from position 4, which holds " road".
  EXPECT_NE(r.output.find("top-2: 4 \" road\" 1.0000"), std::string::npos) << r.output;
}

// --mask top:K takes the heads from --scores, as in rhead niah.
TEST(CliAttn, MaskByScore) {
  testing::MkdtempDir dir("rhead-attn-");
  {
    std::ofstream out(dir.sub("scores.json"));
    out << R"({"0-0":[0],"0-1":[0.05],"0-2":[0],"0-3":[0],"1-0":[0],"1-1":[1.0],"1-2":[0.9],"1-3":[0]})";
  }
  Result r = attn("-m builtin:induction -p " + kPrompt + " -n 2 --json --mask top:2 --scores '" +
                  dir.sub("scores.json") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const std::string& line : lines(r.output)) {
    const nlohmann::json j = nlohmann::json::parse(line);
    EXPECT_EQ(j.at("blocks.1.attn.masked"), (nlohmann::json{false, true, true, false}));
    for (const auto& h : j.at("copies")) EXPECT_TRUE(h != "1-1" && h != "1-2") << line;  // masked heads never copy
    EXPECT_NE(j.at("piece"), " road");  // without the induction heads the pattern is not continued
  }
  Result missing = attn("-m builtin:induction -p 'river town' -n 1 --mask top:2", true);
  EXPECT_NE(missing.exit_code, 0);
}

// --context / --question build explain's prompt; --plot draws one head.
TEST(CliAttn, ContextQuestionAndPlot) {
  testing::MkdtempDir dir("rhead-attn-");
  {
    std::ofstream out(dir.sub("doc.txt"));
    out << "river town field road garden market bridge forest village farmer";
  }
  Result r = attn("-m builtin:induction --context '" + dir.sub("doc.txt") +
                      "' --question 'river town field' -n 2 --heads 1-1 --plot '" + dir.sub("head.svg") + "'",
                  true);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("wrote " + dir.sub("head.svg") + " (head 1-1)"), std::string::npos) << r.output;
  std::ifstream svg(dir.sub("head.svg"));
  std::stringstream s;
  s << svg.rdbuf();
  EXPECT_NE(s.str().find("head 1-1: attention at each decode step"), std::string::npos);
  EXPECT_NE(s.str().find("position"), std::string::npos);
  Result both = attn("-m builtin:induction -p x --context '" + dir.sub("doc.txt") + "' --question q -n 1", true);
  EXPECT_NE(both.exit_code, 0);
  EXPECT_NE(both.output.find("--prompt and --context exclude each other"), std::string::npos) << both.output;
}

}  // namespace
}  // namespace rhead

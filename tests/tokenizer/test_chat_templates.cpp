// Chat templates: golden strings written out by hand from each model's published Jinja
// template, recognition from GGUF / tokenizer_config.json, and the ids the prompts encode to
// (checked once against the HF reference and libsentencepiece).
#include <gtest/gtest.h>

#include "io/error.h"
#include "io/gguf.h"
#include "oracle_support.h"
#include "tokenizer/tokenizer.h"

namespace {

using rhead::ChatMessage;
using rhead::ChatTemplateKind;
using rhead::Tokenizer;
using namespace rhead::testing;

const char* const kLlamaSpm = "data/tokenizers/llama_cpp_vocab/ggml-vocab-llama-spm.gguf";

TEST(ChatTemplateNames, RoundTripAndUnknown) {
  for (auto kind :
       {ChatTemplateKind::llama2, ChatTemplateKind::mistral, ChatTemplateKind::chatml, ChatTemplateKind::llama3})
    EXPECT_EQ(rhead::chat_template_from_name(rhead::chat_template_name(kind)), kind);
  EXPECT_FALSE(rhead::chat_template_from_name("vicuna").has_value());
  EXPECT_FALSE(rhead::chat_template_from_name("").has_value());
}

TEST(ChatTemplateGolden, Llama2WithSystemAndHistory) {
  RHEAD_REQUIRE_FILE(shared_path(kLlamaSpm));
  Tokenizer tok = Tokenizer::load(shared_path(kLlamaSpm));
  std::vector<ChatMessage> msgs = {{"system", "You are a helpful assistant."},
                                   {"user", "What is the code? "},
                                   {"assistant", " star oil nest "},
                                   {"user", "Thanks"}};
  EXPECT_EQ(tok.apply_chat_template(ChatTemplateKind::llama2, msgs, true),
            "<s>[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\nWhat is the code? [/INST] star oil nest "
            "</s><s>[INST] Thanks [/INST]");
  // No system message: the first turn is plain.
  EXPECT_EQ(tok.apply_chat_template(ChatTemplateKind::llama2, {{"user", "Hi"}}, true), "<s>[INST] Hi [/INST]");
  // Llama-2-chat prompts are known to start 1, 518 ("▁["), 25580 ("INST"), 29962 ("]").
  EXPECT_EQ(tok.encode(tok.apply_chat_template(ChatTemplateKind::llama2, {{"user", "Hi"}}, true), false),
            (std::vector<int32_t>{1, 518, 25580, 29962, 6324, 518, 29914, 25580, 29962}));
}

TEST(ChatTemplateGolden, Mistral) {
  RHEAD_REQUIRE_FILE(shared_path(kLlamaSpm));
  Tokenizer tok = Tokenizer::load(shared_path(kLlamaSpm));
  std::vector<ChatMessage> msgs = {{"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Bye"}};
  EXPECT_EQ(tok.apply_chat_template(ChatTemplateKind::mistral, msgs, true),
            "<s>[INST] Hi [/INST]Hello!</s>[INST] Bye [/INST]");
  EXPECT_EQ(tok.apply_chat_template(ChatTemplateKind::mistral, {{"system", "Be brief."}, {"user", "Hi"}}, true),
            "<s>[INST] Be brief.\n\nHi [/INST]");
}

TEST(ChatTemplateGolden, InstTemplatesRejectBadRoleOrder) {
  RHEAD_REQUIRE_FILE(shared_path(kLlamaSpm));
  Tokenizer tok = Tokenizer::load(shared_path(kLlamaSpm));
  EXPECT_THROW(tok.apply_chat_template(ChatTemplateKind::llama2, {{"user", "a"}, {"user", "b"}}, true), rhead::Error);
  EXPECT_THROW(tok.apply_chat_template(ChatTemplateKind::mistral, {{"assistant", "a"}}, true), rhead::Error);
}

TEST(ChatTemplateGolden, ChatMLFromQwen3) {
  const std::string dir = shared_path("data/tokenizers/hf_qwen3");
  RHEAD_REQUIRE_FILE(dir + "/tokenizer.json");
  Tokenizer tok = Tokenizer::load(dir);
  ASSERT_EQ(tok.chat_template(), ChatTemplateKind::chatml);
  std::vector<ChatMessage> msgs = {{"system", "S"}, {"user", "Hi"}, {"assistant", "Yo"}, {"user", "Q"}};
  EXPECT_EQ(tok.apply_chat_template(msgs, true),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYo<|im_end|>\n"
            "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(tok.apply_chat_template(ChatTemplateKind::chatml, {{"user", "Hi"}}, false),
            "<|im_start|>user\nHi<|im_end|>\n");
  EXPECT_EQ(tok.encode(tok.apply_chat_template({{"user", "Hi"}}, true), false),
            (std::vector<int32_t>{151644, 872, 198, 13048, 151645, 198, 151644, 77091, 198}));
  EXPECT_TRUE(tok.is_end_of_generation(151645));  // <|im_end|>
  EXPECT_FALSE(tok.add_bos_token());
}

TEST(ChatTemplateGolden, Llama3) {
  const std::string dir = shared_path("data/tokenizers/hf_llama3");
  RHEAD_REQUIRE_FILE(dir + "/tokenizer.json");
  Tokenizer tok = Tokenizer::load(dir);
  ASSERT_EQ(tok.chat_template(), ChatTemplateKind::llama3);
  std::vector<ChatMessage> msgs = {{"system", " S "}, {"user", "Hi\n"}};
  EXPECT_EQ(
      tok.apply_chat_template(msgs, true),
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(tok.apply_chat_template(ChatTemplateKind::llama3, {{"user", "Hi"}}, false),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
  EXPECT_EQ(tok.encode(tok.apply_chat_template({{"user", "Hi"}}, true), false),
            (std::vector<int32_t>{128000, 128006, 882, 128007, 271, 13347, 128009, 128006, 78191, 128007, 271}));
  EXPECT_TRUE(tok.is_end_of_generation(128009));  // <|eot_id|>
  EXPECT_TRUE(tok.is_end_of_generation(128001));  // <|end_of_text|>
  EXPECT_TRUE(tok.is_special(128006));
}

TEST(ChatTemplateRecognition, UnknownTemplateKeepsTextButIsAnError) {
  const std::string path = shared_path("data/tokenizers/llama_cpp_vocab/ggml-vocab-phi-3.gguf");
  RHEAD_REQUIRE_FILE(path);
  Tokenizer tok = Tokenizer::load(path);
  EXPECT_FALSE(tok.chat_template().has_value());  // Phi-3's <|user|> template is not supported
  EXPECT_NE(tok.chat_template_text().find("<|user|>"), std::string::npos);
  EXPECT_THROW(tok.apply_chat_template({{"user", "Hi"}}, true), rhead::Error);
  // Naming a template still works.
  EXPECT_EQ(tok.apply_chat_template(ChatTemplateKind::chatml, {{"user", "Hi"}}, true),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplateRecognition, FromTemplateText) {
  EXPECT_EQ(rhead::chat_template_from_text("{% if messages[0]['role'] == 'system' %}<<SYS>>{% endif %}[INST] "),
            ChatTemplateKind::llama2);
  EXPECT_EQ(rhead::chat_template_from_text("{{ bos_token }}{{ '[INST] ' + message['content'] + ' [/INST]' }}"),
            ChatTemplateKind::mistral);
  EXPECT_EQ(rhead::chat_template_from_text("{{'<|im_start|>' + message['role'] + '\\n'}}"), ChatTemplateKind::chatml);
  EXPECT_EQ(rhead::chat_template_from_text("<|start_header_id|>' + role + '<|end_header_id|> ... <|eot_id|>"),
            ChatTemplateKind::llama3);
  EXPECT_FALSE(rhead::chat_template_from_text("{{ '<|user|>' }}").has_value());
}

TEST(ChatTemplateRecognition, NoTemplateIsAnError) {
  const std::string path = shared_path("models/stories260K/tok512.bin");
  RHEAD_REQUIRE_FILE(path);
  Tokenizer tok = Tokenizer::load(path);
  EXPECT_FALSE(tok.chat_template().has_value());
  EXPECT_TRUE(tok.chat_template_text().empty());
  EXPECT_THROW(tok.apply_chat_template({{"user", "Hi"}}, true), rhead::Error);
}

}  // namespace

// Tokenizer from GGUF metadata: tokenizer.ggml.model "llama" (SentencePiece BPE, merges
// by score) or "gpt2" (byte-level BPE, merges by rank), with the keys llama.cpp writes.
#include "io/error.h"
#include "io/gguf.h"
#include "tokenizer/tokenizer_core.h"

namespace rhead::detail {

namespace {

const nlohmann::json& require_array(const GGUFFile& gguf, const std::string& key) {
  const nlohmann::json* value = gguf.find(key);
  if (!value) fail(gguf.path(), "missing tokenizer metadata " + key);
  if (!value->is_array()) fail(gguf.path(), key + " is not an array");
  return *value;
}

// Optional ids: llama.cpp writes -1 (as u32 0xFFFFFFFF) for "none".
int32_t optional_id(const GGUFFile& gguf, const std::string& key, int32_t fallback) {
  auto value = gguf.get_int(key);
  if (!value) return fallback;
  if (*value < 0 || *value >= 0x7FFFFFFF) return -1;
  return static_cast<int32_t>(*value);
}

}  // namespace

std::shared_ptr<TokenizerCore> load_gguf_core(const GGUFFile& gguf) {
  auto core = std::make_shared<TokenizerCore>();
  core->source = gguf.path();
  const std::string where = gguf.path();
  auto model = gguf.get_string("tokenizer.ggml.model");
  if (!model) fail(where, "no tokenizer in this GGUF (tokenizer.ggml.model is missing)");

  const nlohmann::json& tokens = require_array(gguf, "tokenizer.ggml.tokens");
  core->tokens.reserve(tokens.size());
  for (const auto& t : tokens) {
    if (!t.is_string()) fail(where, "tokenizer.ggml.tokens holds a non-string");
    core->tokens.push_back(t.get<std::string>());
  }
  if (const nlohmann::json* scores = gguf.find("tokenizer.ggml.scores")) {
    if (!scores->is_array()) fail(where, "tokenizer.ggml.scores is not an array");
    for (const auto& s : *scores) {
      if (!s.is_number()) fail(where, "tokenizer.ggml.scores holds a non-number");
      core->scores.push_back(s.get<float>());
    }
  }
  if (const nlohmann::json* types = gguf.find("tokenizer.ggml.token_type")) {
    if (!types->is_array()) fail(where, "tokenizer.ggml.token_type is not an array");
    for (const auto& t : *types) {
      if (!t.is_number_integer()) fail(where, "tokenizer.ggml.token_type holds a non-integer");
      int v = t.get<int>();
      // 0 (undefined) and unknown values are treated as ordinary tokens.
      core->kinds.push_back(v >= 1 && v <= 6 ? static_cast<TokenKind>(v) : TokenKind::normal);
    }
  }

  std::string pre = gguf.get_string("tokenizer.ggml.pre").value_or("");
  if (*model == "llama") {
    core->family = TokenizerFamily::sentencepiece_bpe;
    core->merge_by_score = true;
    core->byte_fallback = true;
    core->unk_id = optional_id(gguf, "tokenizer.ggml.unknown_token_id", 0);
    core->bos_id = optional_id(gguf, "tokenizer.ggml.bos_token_id", 1);
    core->eos_id = optional_id(gguf, "tokenizer.ggml.eos_token_id", 2);
    core->add_bos = gguf.get_bool("tokenizer.ggml.add_bos_token").value_or(true);
    core->add_space_prefix = gguf.get_bool("tokenizer.ggml.add_space_prefix").value_or(true);
    core->decode_strips_prefix_space = core->add_space_prefix;
    // GGUF does not carry SentencePiece's normaliser spec; llama.cpp names this key when
    // it knows the model collapses whitespace.
    core->remove_extra_whitespaces = gguf.get_bool("tokenizer.ggml.remove_extra_whitespaces").value_or(false);
  } else if (*model == "gpt2") {
    core->family = TokenizerFamily::byte_level_bpe;
    core->add_space_prefix = false;
    core->decode_strips_prefix_space = false;
    const nlohmann::json& merges = require_array(gguf, "tokenizer.ggml.merges");
    core->merge_list.reserve(merges.size());
    for (const auto& m : merges) {
      if (!m.is_string()) fail(where, "tokenizer.ggml.merges holds a non-string");
      const std::string& rule = m.get_ref<const std::string&>();
      size_t space = rule.find(' ', 1);
      if (space == std::string::npos) fail(where, "tokenizer.ggml.merges entry \"" + rule + "\" is not \"left right\"");
      core->merge_list.emplace_back(rule.substr(0, space), rule.substr(space + 1));
    }
    core->pre_tokenizer = pre_tokenizer_for_gguf_name(pre, where);
    core->ignore_merges = gguf_pre_ignores_merges(pre);
    core->unk_id = optional_id(gguf, "tokenizer.ggml.unknown_token_id", -1);
    core->bos_id = optional_id(gguf, "tokenizer.ggml.bos_token_id", -1);
    core->eos_id = optional_id(gguf, "tokenizer.ggml.eos_token_id", -1);
    core->add_bos = gguf.get_bool("tokenizer.ggml.add_bos_token").value_or(gguf_pre_adds_bos(pre));
  } else {
    fail(where, "unsupported tokenizer.ggml.model \"" + *model + "\" (supported: llama, gpt2)");
  }
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    int32_t id = optional_id(gguf, key, -1);
    if (id >= 0) core->extra_eog_ids.push_back(id);
  }
  core->chat_template_text = gguf.get_string("tokenizer.chat_template").value_or("");
  finalize_core(*core);
  return core;
}

}  // namespace rhead::detail

// Tokenizers from Hugging Face files: tokenizer.json (model type BPE, with either a
// SentencePiece-style normaliser or a byte-level pre-tokenizer), the SentencePiece
// tokenizer.model protobuf, and the tokenizer_config.json that sits beside them.
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/error.h"
#include "io/json.h"
#include "io/mapped_file.h"
#include "tokenizer/tokenizer_core.h"

namespace rhead::detail {

using nlohmann::json;

namespace {

constexpr std::string_view kMetaspace = "\xE2\x96\x81";

json parse_json_file(const std::string& path) { return read_json_file(path); }

std::string type_of(const json& node) {
  if (!node.is_object() || !node.contains("type") || !node["type"].is_string()) return "";
  return node["type"].get<std::string>();
}

// Every node of a possibly nested "Sequence" (normalizers, pretokenizers, processors, decoders),
// in order. Iterative: an explicit stack of nodes still to visit, so nesting depth costs heap,
// not call stack (parse_json already caps the depth).
void flatten(const json& root, const char* list_key, std::vector<json>& out) {
  std::vector<const json*> pending{&root};
  while (!pending.empty()) {
    const json* node = pending.back();
    pending.pop_back();
    if (node->is_null()) continue;
    if (type_of(*node) == "Sequence" && node->contains(list_key) && (*node)[list_key].is_array()) {
      const json& children = (*node)[list_key];
      for (auto it = children.rbegin(); it != children.rend(); ++it) pending.push_back(&*it);
    } else {
      out.push_back(*node);
    }
  }
}

std::string regex_escape(const std::string& literal) {
  std::string out;
  for (char c : literal) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

SplitBehavior parse_behavior(const std::string& name, const std::string& where) {
  if (name == "Isolated") return SplitBehavior::isolated;
  if (name == "Removed") return SplitBehavior::removed;
  if (name == "MergedWithPrevious") return SplitBehavior::merged_with_previous;
  if (name == "MergedWithNext") return SplitBehavior::merged_with_next;
  if (name == "Contiguous") return SplitBehavior::contiguous;
  fail(where, "unsupported Split behavior \"" + name + "\"");
}

std::string token_content(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value["content"].is_string())
    return value["content"].get<std::string>();
  return "";
}

void read_pre_tokenizer(TokenizerCore& core, const json& root, const std::string& where) {
  std::vector<json> steps;
  if (root.contains("pre_tokenizer")) flatten(root["pre_tokenizer"], "pretokenizers", steps);
  for (const auto& step : steps) {
    std::string type = type_of(step);
    if (type == "ByteLevel") {
      core.family = TokenizerFamily::byte_level_bpe;
      core.byte_level_add_prefix_space = step.value("add_prefix_space", false);
      if (step.value("use_regex", true))
        core.pre_tokenizer.steps.push_back(
            {CompiledRegex::compile(kGpt2Pattern, where), SplitBehavior::isolated, false});
    } else if (type == "Split") {
      const json& pattern = step.at("pattern");
      std::string regex;
      if (pattern.contains("Regex"))
        regex = pattern["Regex"].get<std::string>();
      else if (pattern.contains("String"))
        regex = regex_escape(pattern["String"].get<std::string>());
      else
        fail(where, "Split pre-tokenizer without a Regex or String pattern");
      core.pre_tokenizer.steps.push_back({CompiledRegex::compile(regex, where),
                                          parse_behavior(step.value("behavior", std::string("Isolated")), where),
                                          step.value("invert", false)});
    } else if (type == "Digits") {
      const char* regex = step.value("individual_digits", false) ? R"re(\p{N})re" : R"re(\p{N}+)re";
      core.pre_tokenizer.steps.push_back({CompiledRegex::compile(regex, where), SplitBehavior::isolated, false});
    } else if (type == "Metaspace") {
      // SentencePiece-style: spaces become "▁", a "▁" is prepended as the scheme says.
      std::string scheme =
          step.value("prepend_scheme", std::string(step.value("add_prefix_space", true) ? "always" : "never"));
      core.add_space_prefix = scheme != "never";
      core.prefix_every_segment = scheme == "always";
      core.split_words_on_metaspace = step.value("split", true);
      if (step.contains("replacement") && step["replacement"].get<std::string>() != kMetaspace)
        fail(where, "Metaspace pre-tokenizer with a replacement other than U+2581 is not supported");
    } else {
      fail(where, "unsupported pre_tokenizer type \"" + type + "\"");
    }
  }
}

void read_normalizer(TokenizerCore& core, const json& root, bool has_metaspace, const std::string& where) {
  std::vector<json> steps;
  if (root.contains("normalizer")) flatten(root["normalizer"], "normalizers", steps);
  bool prepend = false;
  for (const auto& step : steps) {
    std::string type = type_of(step);
    if (type == "Prepend") {
      if (step.value("prepend", std::string()) != kMetaspace)
        fail(where, "Prepend normalizer with something other than U+2581 is not supported");
      prepend = true;
    } else if (type == "Replace") {
      const json& pattern = step.at("pattern");
      bool space_to_metaspace =
          pattern.contains("String") && pattern["String"] == " " && step.value("content", std::string()) == kMetaspace;
      if (!space_to_metaspace) fail(where, "unsupported Replace normalizer (only ' ' -> U+2581 is known)");
    } else if (type == "NFC") {
      core.nfc_normalizer = true;
    } else {
      fail(where, "unsupported normalizer type \"" + type + "\"");
    }
  }
  if (core.family == TokenizerFamily::sentencepiece_bpe && !has_metaspace) {
    core.add_space_prefix = prepend;
    core.prefix_every_segment = true;  // the normaliser runs on each piece between added tokens
  }
}

void read_decoder(TokenizerCore& core, const json& root) {
  std::vector<json> steps;
  if (root.contains("decoder")) flatten(root["decoder"], "decoders", steps);
  core.decode_strips_prefix_space = false;
  for (const auto& step : steps) {
    std::string type = type_of(step);
    if (type == "Strip" && step.value("content", std::string()) == " " && step.value("start", 0) >= 1)
      core.decode_strips_prefix_space = true;
    if (type == "Metaspace" && step.value("prepend_scheme", std::string("always")) != "never" &&
        step.value("add_prefix_space", true))
      core.decode_strips_prefix_space = true;
  }
}

// BOS from a TemplateProcessing post-processor whose single-sequence template starts with
// a special token ("<s> $A").
std::string template_bos(const json& root) {
  std::vector<json> steps;
  if (root.contains("post_processor")) flatten(root["post_processor"], "processors", steps);
  for (const auto& step : steps) {
    if (type_of(step) != "TemplateProcessing" || !step.contains("single") || !step["single"].is_array()) continue;
    const json& single = step["single"];
    if (!single.empty() && single[0].contains("SpecialToken"))
      return single[0]["SpecialToken"].value("id", std::string());
  }
  return "";
}

}  // namespace

std::shared_ptr<TokenizerCore> load_tokenizer_json_core(const std::string& path) {
  auto core = std::make_shared<TokenizerCore>();
  core->source = path;
  json root = parse_json_file(path);
  if (!root.is_object() || !root.contains("model")) fail(path, "not a tokenizer.json (no \"model\")");
  const json& model = root["model"];
  std::string model_type = type_of(model);
  if (model_type.empty() && model.contains("merges")) model_type = "BPE";  // very old files omit it
  if (model_type != "BPE")
    fail(path, "unsupported tokenizer model type \"" + model_type + "\" (only BPE is supported)");
  if (!model.contains("vocab") || !model["vocab"].is_object()) fail(path, "BPE model without a vocab object");

  // Vocabulary: ids may be sparse and added tokens may extend it, but the table is sized
  // from the largest id, so ids are bounded by the number of entries before anything is
  // allocated: a 10 KB file must not claim id 5e7 (4 GB of empty strings).
  const json added = root.contains("added_tokens") ? root["added_tokens"] : json::array();
  if (!added.is_array()) fail(path, "added_tokens is not a list");
  const int64_t n_entries = static_cast<int64_t>(model["vocab"].size() + added.size());
  const int64_t id_limit = 2 * n_entries + 1024;
  int64_t max_id = -1;
  for (const auto& [text, id] : model["vocab"].items())
    max_id = std::max(max_id, json_integer(id, path, "vocab entry \"" + text + "\" id", 0, id_limit - 1));
  for (const auto& t : added) {
    if (!t.is_object()) fail(path, "added_tokens holds a non-object");
    max_id = std::max(
        max_id, json_integer(json_required(t, "id", path + ": added token"), path, "added token id", 0, id_limit - 1));
  }
  if (max_id < 0) fail(path, "empty vocabulary");
  core->tokens.assign(static_cast<size_t>(max_id + 1), std::string());
  core->kinds.assign(core->tokens.size(), TokenKind::normal);
  for (const auto& [text, id] : model["vocab"].items()) core->tokens[id.get<size_t>()] = text;

  core->merge_by_score = false;
  if (model.contains("merges")) {
    const json& merges = model["merges"];
    core->merge_list.reserve(merges.size());
    for (const auto& m : merges) {
      if (m.is_array() && m.size() == 2) {
        core->merge_list.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      } else if (m.is_string()) {
        const std::string& rule = m.get_ref<const std::string&>();
        size_t space = rule.find(' ', 1);
        if (space == std::string::npos) fail(path, "merge \"" + rule + "\" is not \"left right\"");
        core->merge_list.emplace_back(rule.substr(0, space), rule.substr(space + 1));
      } else {
        fail(path, "merges holds an entry that is neither a string nor a pair");
      }
    }
  }
  core->byte_fallback = model.value("byte_fallback", false);
  core->ignore_merges = model.value("ignore_merges", false);
  if (model.contains("continuing_subword_prefix") && model["continuing_subword_prefix"].is_string() &&
      !model["continuing_subword_prefix"].get<std::string>().empty())
    fail(path, "BPE continuing_subword_prefix is not supported");
  if (model.contains("end_of_word_suffix") && model["end_of_word_suffix"].is_string() &&
      !model["end_of_word_suffix"].get<std::string>().empty())
    fail(path, "BPE end_of_word_suffix is not supported");

  core->family = TokenizerFamily::sentencepiece_bpe;
  read_pre_tokenizer(*core, root, path);
  bool has_metaspace = false;
  if (root.contains("pre_tokenizer")) {
    std::vector<json> steps;
    flatten(root["pre_tokenizer"], "pretokenizers", steps);
    for (const auto& s : steps) has_metaspace = has_metaspace || type_of(s) == "Metaspace";
  }
  if (type_of(root.value("decoder", json())) == "ByteLevel") core->family = TokenizerFamily::byte_level_bpe;
  read_normalizer(*core, root, has_metaspace, path);
  read_decoder(*core, root);
  if (core->family == TokenizerFamily::byte_level_bpe) {
    core->add_space_prefix = false;
    core->decode_strips_prefix_space = false;
  }

  std::string unk =
      model.contains("unk_token") && model["unk_token"].is_string() ? model["unk_token"].get<std::string>() : "";
  for (const auto& t : added) {
    const int64_t id = json_integer(t["id"], path, "added token id");
    const std::string content = json_string_field(t, "content", path + ": added token", "");
    if (id < 0 || content.empty()) fail(path, "added token without id or content");
    core->tokens[id] = content;
    bool special = t.value("special", false);
    core->kinds[id] = special ? TokenKind::control : TokenKind::user_defined;
    core->atoms.push_back(
        {content, static_cast<int32_t>(id), special, t.value("lstrip", false), t.value("rstrip", false)});
  }
  for (size_t id = 0; id < core->tokens.size(); ++id)
    if (core->tokens[id].empty()) core->kinds[id] = TokenKind::unused;

  // Special ids: from the post-processor here; tokenizer_config.json may refine them.
  if (!unk.empty()) {
    for (size_t id = 0; id < core->tokens.size(); ++id)
      if (core->tokens[id] == unk) {
        core->unk_id = static_cast<int32_t>(id);
        core->kinds[id] = TokenKind::unknown;
        break;
      }
  }
  std::string bos = template_bos(root);
  if (!bos.empty()) {
    for (size_t id = 0; id < core->tokens.size(); ++id)
      if (core->tokens[id] == bos) core->bos_id = static_cast<int32_t>(id);
    core->add_bos = core->bos_id >= 0;
  }
  apply_tokenizer_config(*core, (std::filesystem::path(path).parent_path() / "tokenizer_config.json").string());
  finalize_core(*core);
  return core;
}

void apply_tokenizer_config(TokenizerCore& core, const std::string& config_path) {
  if (!std::filesystem::exists(config_path)) return;
  json config = parse_json_file(config_path);
  if (!config.is_object()) fail(config_path, "not a JSON object");
  auto id_of = [&](const json& value) -> int32_t {
    std::string text = token_content(value);
    if (text.empty()) return -1;
    for (size_t id = 0; id < core.tokens.size(); ++id)
      if (core.tokens[id] == text) return static_cast<int32_t>(id);
    return -1;
  };
  if (config.contains("bos_token")) {
    int32_t id = id_of(config["bos_token"]);
    if (id >= 0 || config["bos_token"].is_null()) core.bos_id = id;
  }
  if (config.contains("eos_token")) {
    int32_t id = id_of(config["eos_token"]);
    if (id >= 0) core.eos_id = id;
  }
  if (config.contains("add_bos_token") && config["add_bos_token"].is_boolean())
    core.add_bos = config["add_bos_token"].get<bool>();
  if (core.bos_id < 0) core.add_bos = false;
  if (config.contains("chat_template")) {
    const json& tmpl = config["chat_template"];
    if (tmpl.is_string()) {
      core.chat_template_text = tmpl.get<std::string>();
    } else if (tmpl.is_array()) {
      // Named templates: the "default" one is what apply_chat_template uses.
      for (const auto& entry : tmpl)
        if (entry.value("name", std::string()) == "default")
          core.chat_template_text = entry.value("template", std::string());
    }
  }
}

// ---- SentencePiece tokenizer.model ----

namespace {

// A minimal protobuf wire-format reader: enough for sentencepiece_model.proto.
struct ProtoReader {
  const uint8_t* p;
  const uint8_t* end;
  const std::string& where;

  bool done() const { return p >= end; }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p >= end) fail(where, "truncated protobuf varint");
      uint8_t b = *p++;
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail(where, "protobuf varint is too long");
  }
  std::string_view bytes() {
    uint64_t len = varint();
    if (len > static_cast<uint64_t>(end - p)) fail(where, "protobuf field runs past the end of the file");
    std::string_view s(reinterpret_cast<const char*>(p), len);
    p += len;
    return s;
  }
  uint32_t fixed32() {
    if (end - p < 4) fail(where, "truncated protobuf fixed32");
    uint32_t v = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
    p += 4;
    return v;
  }
  void skip(uint32_t wire_type) {
    switch (wire_type) {
      case 0: varint(); break;
      case 1:
        if (end - p < 8) fail(where, "truncated protobuf fixed64");
        p += 8;
        break;
      case 2: bytes(); break;
      case 5: fixed32(); break;
      default: fail(where, "unsupported protobuf wire type " + std::to_string(wire_type));
    }
  }
  static ProtoReader of(std::string_view s, const std::string& where) {
    auto* b = reinterpret_cast<const uint8_t*>(s.data());
    return {b, b + s.size(), where};
  }
};

}  // namespace

std::shared_ptr<TokenizerCore> load_sentencepiece_model_core(const std::string& path) {
  auto core = std::make_shared<TokenizerCore>();
  core->source = path;
  core->family = TokenizerFamily::sentencepiece_bpe;
  core->merge_by_score = true;
  std::string file = read_text_file(path);
  // sentencepiece_model.proto defaults.
  int64_t model_type = 1, unk_id = 0, bos_id = 1, eos_id = 2;
  bool byte_fallback = false, add_dummy_prefix = true, remove_extra_whitespaces = true, escape_whitespaces = true;
  std::string normalizer_name;
  bool has_charsmap = false;

  ProtoReader model = ProtoReader::of(file, path);
  while (!model.done()) {
    uint64_t tag = model.varint();
    uint32_t field = static_cast<uint32_t>(tag >> 3), wire = tag & 7;
    if (field == 1 && wire == 2) {  // SentencePiece piece
      ProtoReader piece = ProtoReader::of(model.bytes(), path);
      std::string text;
      float score = 0;
      int64_t type = 1;
      while (!piece.done()) {
        uint64_t t = piece.varint();
        uint32_t f = static_cast<uint32_t>(t >> 3), w = t & 7;
        if (f == 1 && w == 2) {
          text = std::string(piece.bytes());
        } else if (f == 2 && w == 5) {
          uint32_t bits = piece.fixed32();
          std::memcpy(&score, &bits, sizeof(score));
        } else if (f == 3 && w == 0) {
          type = static_cast<int64_t>(piece.varint());
        } else {
          piece.skip(w);
        }
      }
      core->tokens.push_back(std::move(text));
      core->scores.push_back(score);
      core->kinds.push_back(type >= 1 && type <= 6 ? static_cast<TokenKind>(type) : TokenKind::normal);
    } else if (field == 2 && wire == 2) {  // TrainerSpec
      ProtoReader spec = ProtoReader::of(model.bytes(), path);
      while (!spec.done()) {
        uint64_t t = spec.varint();
        uint32_t f = static_cast<uint32_t>(t >> 3), w = t & 7;
        if (w != 0) {
          spec.skip(w);
          continue;
        }
        int64_t v = static_cast<int64_t>(spec.varint());  // int32 -1 arrives sign-extended
        if (f == 3)
          model_type = v;
        else if (f == 35)
          byte_fallback = v != 0;
        else if (f == 40)
          unk_id = v;
        else if (f == 41)
          bos_id = v;
        else if (f == 42)
          eos_id = v;
      }
    } else if (field == 3 && wire == 2) {  // NormalizerSpec
      ProtoReader spec = ProtoReader::of(model.bytes(), path);
      while (!spec.done()) {
        uint64_t t = spec.varint();
        uint32_t f = static_cast<uint32_t>(t >> 3), w = t & 7;
        if (f == 1 && w == 2)
          normalizer_name = std::string(spec.bytes());
        else if (f == 2 && w == 2)
          has_charsmap = !spec.bytes().empty();
        else if (f == 3 && w == 0)
          add_dummy_prefix = spec.varint() != 0;
        else if (f == 4 && w == 0)
          remove_extra_whitespaces = spec.varint() != 0;
        else if (f == 5 && w == 0)
          escape_whitespaces = spec.varint() != 0;
        else
          spec.skip(w);
      }
    } else {
      model.skip(wire);
    }
  }
  if (core->tokens.empty()) fail(path, "not a SentencePiece model (no pieces)");
  if (model_type != 2)
    fail(path, "SentencePiece model type " + std::to_string(model_type) + " is not supported (only BPE, type 2)");
  if (has_charsmap && normalizer_name != "identity")
    fail(path, "SentencePiece normalizer \"" + normalizer_name + "\" is not supported (only identity)");
  if (!escape_whitespaces) fail(path, "SentencePiece models that keep raw spaces are not supported");
  auto id_or_none = [&](int64_t id) {
    return id >= 0 && id < static_cast<int64_t>(core->tokens.size()) ? static_cast<int32_t>(id) : -1;
  };
  core->unk_id = id_or_none(unk_id);
  core->bos_id = id_or_none(bos_id);
  core->eos_id = id_or_none(eos_id);
  core->byte_fallback = byte_fallback;
  core->add_space_prefix = add_dummy_prefix;
  core->remove_extra_whitespaces = remove_extra_whitespaces;
  core->decode_strips_prefix_space = add_dummy_prefix;
  core->add_bos = core->bos_id >= 0;  // LlamaTokenizer's default; tokenizer_config.json may override
  core->prefix_every_segment = true;  // HF "legacy" behaviour unless the config says legacy: false

  std::string config = (std::filesystem::path(path).parent_path() / "tokenizer_config.json").string();
  apply_tokenizer_config(*core, config);
  if (std::filesystem::exists(config)) {
    json cfg = parse_json_file(config);
    if (cfg.is_object() && cfg.contains("legacy") && cfg["legacy"].is_boolean() && !cfg["legacy"].get<bool>())
      core->prefix_every_segment = false;
  }
  finalize_core(*core);
  return core;
}

// ---- llama2.c tokenizer .bin ----

std::shared_ptr<TokenizerCore> load_llama2c_core(const std::string& path) {
  // Layout: i32 max_token_length, then per token: f32 score, i32 byte length, bytes.
  // The exporter wrote "▁" as ' ' and BOS/EOS as "\n<s>\n" / "\n</s>\n".
  auto core = std::make_shared<TokenizerCore>();
  core->source = path;
  std::string file = read_text_file(path);
  if (file.size() < 4) fail(path, "too short for a llama2.c tokenizer");
  size_t pos = 4;
  while (pos < file.size()) {
    if (file.size() - pos < 8) fail(path, "truncated token record at byte " + std::to_string(pos));
    float score;
    int32_t len;
    std::memcpy(&score, file.data() + pos, 4);
    std::memcpy(&len, file.data() + pos + 4, 4);
    pos += 8;
    if (len < 0 || static_cast<size_t>(len) > file.size() - pos)
      fail(path, "token " + std::to_string(core->tokens.size()) + " has a bad length " + std::to_string(len));
    std::string text;
    for (char c : std::string_view(file.data() + pos, len)) {
      if (c == ' ')
        text.append(kMetaspace);
      else
        text.push_back(c);
    }
    pos += len;
    core->tokens.push_back(std::move(text));
    core->scores.push_back(score);
  }
  if (core->tokens.size() < 3) fail(path, "a llama2.c tokenizer needs at least <unk>, <s>, </s>");
  core->tokens[1] = "<s>";
  core->tokens[2] = "</s>";
  core->kinds.assign(core->tokens.size(), TokenKind::normal);
  core->kinds[0] = TokenKind::unknown;
  core->kinds[1] = TokenKind::control;
  core->kinds[2] = TokenKind::control;
  core->family = TokenizerFamily::sentencepiece_bpe;
  core->merge_by_score = true;
  core->byte_fallback = true;
  core->unk_id = 0;
  core->bos_id = 1;
  core->eos_id = 2;
  core->add_bos = true;
  core->add_space_prefix = true;
  core->decode_strips_prefix_space = true;
  // run.c neither trims nor collapses spaces; the .bin does not record what SentencePiece did.
  core->remove_extra_whitespaces = false;
  finalize_core(*core);
  return core;
}

}  // namespace rhead::detail

// PCRE2-backed regex splitting and the named pre-tokenizer sets of byte-level BPE models.
#include "tokenizer/pretokenizer.h"

#include <pcre2.h>

#include "io/error.h"

namespace rhead::detail {

const char* const kGpt2Pattern = R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)re";

namespace {

// Llama-3: case-insensitive contractions, letters with one leading non-letter, digits in
// groups of at most three, newlines kept with the punctuation before them.
const char* const kLlama3Pattern =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
// Qwen2: as Llama-3 but every digit on its own.
const char* const kQwen2Pattern =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

// DeepSeek-LLM's letter class, written with code points: the published pattern holds a few
// compatibility characters (U+1F7D, U+1FBE, U+1FD3, U+1FDB, U+2126, U+212A) that text
// tools tend to NFC-normalise into other characters, which would turn ranges upside down.
const char* const kDeepseekLetters =
    R"re(A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF})re"
    R"re(\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1})re"
    R"re(\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5})re"
    R"re(\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77})re"
    R"re(\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D})re"
    R"re(\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC})re"
    R"re(\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC})re"
    R"re(\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D})re"
    R"re(\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F})re"
    R"re(\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE})re"
    R"re(\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787})re"
    R"re(\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A})re"
    R"re(\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2})re"
    R"re(\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943})re";
const char* const kCjkHangul = R"re([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)re";

PreTokenizer isolated_sequence(const std::vector<std::string>& patterns, const std::string& where) {
  PreTokenizer pre;
  for (const auto& p : patterns)
    pre.steps.push_back({CompiledRegex::compile(p, where), SplitBehavior::isolated, false});
  return pre;
}

bool name_in(const std::string& name, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (name == n) return true;
  return false;
}

}  // namespace

std::shared_ptr<const CompiledRegex> CompiledRegex::compile(const std::string& pattern, const std::string& where) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                                   &error_code, &error_offset, nullptr);
  if (!code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    fail(where, "bad pre-tokenizer regex at offset " + std::to_string(error_offset) + " (" +
                    reinterpret_cast<const char*>(message) + "): " + pattern);
  }
  // JIT is a speed-up only; the interpreter gives the same matches when it is unavailable.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  auto regex = std::shared_ptr<CompiledRegex>(new CompiledRegex());
  regex->pattern_ = pattern;
  regex->code_ = code;
  return regex;
}

CompiledRegex::~CompiledRegex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

void CompiledRegex::find_all(std::string_view subject, std::vector<std::pair<size_t, size_t>>& matches) const {
  auto* code = static_cast<pcre2_code*>(code_);
  pcre2_match_data* data = pcre2_match_data_create_from_pattern(code, nullptr);
  if (!data) throw Error("pre-tokenizer: out of memory for regex match data");
  const auto* ptr = reinterpret_cast<PCRE2_SPTR>(subject.data());
  size_t offset = 0;
  while (offset < subject.size()) {
    // The caller has validated the UTF-8, so PCRE2 need not check it again on every call.
    int rc = pcre2_match(code, ptr, subject.size(), offset, PCRE2_NO_UTF_CHECK, data, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      pcre2_match_data_free(data);
      throw Error("pre-tokenizer: regex match failed (code " + std::to_string(rc) + ") for " + pattern_);
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
    size_t begin = ovector[0], end = ovector[1];
    if (end > begin) {
      matches.emplace_back(begin, end);
      offset = end;
    } else {
      // An empty match yields no word; step over one whole character and look again.
      offset = begin + 1;
      while (offset < subject.size() && (static_cast<unsigned char>(subject[offset]) & 0xC0) == 0x80) ++offset;
    }
  }
  pcre2_match_data_free(data);
}

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& words) const {
  if (text.empty()) return;
  std::vector<std::string_view> current{text}, next;
  std::vector<std::pair<size_t, size_t>> matches;
  struct Span {
    size_t begin, end;
    bool is_match;
  };
  std::vector<Span> spans;
  for (const auto& step : steps) {
    next.clear();
    for (std::string_view piece : current) {
      matches.clear();
      step.regex->find_all(piece, matches);
      spans.clear();
      size_t pos = 0;
      for (auto [b, e] : matches) {
        if (b > pos) spans.push_back({pos, b, step.invert});
        spans.push_back({b, e, !step.invert});
        pos = e;
      }
      if (pos < piece.size()) spans.push_back({pos, piece.size(), step.invert});
      auto emit = [&](size_t b, size_t e) {
        if (e > b) next.push_back(piece.substr(b, e - b));
      };
      switch (step.behavior) {
        case SplitBehavior::isolated:
          for (const auto& s : spans) emit(s.begin, s.end);
          break;
        case SplitBehavior::removed:
          for (const auto& s : spans)
            if (!s.is_match) emit(s.begin, s.end);
          break;
        case SplitBehavior::merged_with_previous: {
          // A delimiter closes the piece before it: "a-b--c" -> "a-", "b-", "-", "c".
          size_t start = 0;
          for (const auto& s : spans) {
            if (!s.is_match) continue;
            emit(start, s.end);
            start = s.end;
          }
          emit(start, piece.size());
          break;
        }
        case SplitBehavior::merged_with_next: {
          // A delimiter starts the piece after it.
          size_t start = 0;
          for (size_t i = 0; i < spans.size(); ++i) {
            if (spans[i].is_match && spans[i].begin > start) {
              emit(start, spans[i].begin);
              start = spans[i].begin;
            }
          }
          emit(start, piece.size());
          break;
        }
        case SplitBehavior::contiguous: {
          // Runs of consecutive delimiters become one piece.
          size_t i = 0;
          while (i < spans.size()) {
            size_t j = i + 1;
            if (spans[i].is_match)
              while (j < spans.size() && spans[j].is_match) ++j;
            emit(spans[i].begin, spans[j - 1].end);
            i = j;
          }
          break;
        }
      }
    }
    current.swap(next);
  }
  words.insert(words.end(), current.begin(), current.end());
}

PreTokenizer pre_tokenizer_for_gguf_name(const std::string& name, const std::string& where) {
  // Each group runs the split its models publish (their tokenizer.json), as llama.cpp runs it.
  if (name.empty() ||
      name_in(name, {"default", "gpt-2", "gpt2", "mpt", "olmo", "jais", "phi-2", "roberta-bpe", "jina-es", "jina-de",
                     "jina-v1-en", "jina-v2-es", "jina-v2-de", "jina-v2-code", "jina-v2-en", "gigachat", "trillion"}))
    return isolated_sequence({kGpt2Pattern}, where);
  if (name_in(name, {"llama3", "llama-v3", "llama-bpe", "falcon3", "dbrx", "smaug-bpe", "chatglm-bpe", "pixtral"}))
    return isolated_sequence({kLlama3Pattern}, where);
  if (name_in(name, {"qwen2", "stablelm2", "hunyuan", "megrez", "deepseek-r1-qwen"}))
    return isolated_sequence({kQwen2Pattern}, where);
  // StarCoder-style: every digit its own word, then GPT-2's split.
  if (name_in(name, {"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"}))
    return isolated_sequence(
        {R"re(\p{N})re", R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))re"}, where);
  // BLOOM-style: words are runs of anything but whitespace and sentence punctuation.
  if (name_in(name, {"bloom", "poro-chat", "gpt3-finnish"}))
    return isolated_sequence({R"re( ?[^(\s|.,!?…。，、।۔،)]+)re"}, where);
  if (name == "viking") return isolated_sequence({R"re( ?[^(\s|.,!?…。，、।۔،)]+)re", R"re(\p{N})re"}, where);
  // Mistral's tekken (o200k-style): case-aware letter runs, single digits.
  if (name == "tekken")
    return isolated_sequence(
        {R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
        where);
  if (name == "deepseek-v3")
    return isolated_sequence(
        {R"re(\p{N}{1,3})re", R"re([一-龥぀-ゟ゠-ヿ]+)re",
         R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
        where);
  if (name == "chameleon")
    return isolated_sequence({R"re(<sentinel:[0-9]+>)re", R"re((IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z)re",
                              R"re(([\t\n]|    |  ))re", R"re(\p{N})re", R"re([\p{P}!-/:-@\[-`{-~])re",
                              R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))re"},
                             where);
  if (name == "deepseek-llm")
    return isolated_sequence({R"re([\r\n])re", std::string(R"re(\s?[)re") + kDeepseekLetters + "]+",
                              R"re(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)re",
                              R"re(\s+$)re", kCjkHangul, R"re(\p{N}+)re"},
                             where);
  if (name == "deepseek-coder")
    return isolated_sequence({R"re([\r\n])re", R"re(\s?\p{L}+)re", R"re(\s?\p{P}+)re", kCjkHangul, R"re(\p{N})re"},
                             where);
  if (name == "falcon")
    return isolated_sequence(
        {R"re([\p{P}\$\+<=>\^~\|`]+)re",
         R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))re", R"re([0-9][0-9][0-9])re"},
        where);
  fail(where, "unsupported tokenizer.ggml.pre \"" + name +
                  "\" (known: gpt-2, llama-bpe, qwen2, starcoder, bloom, tekken, deepseek-llm, deepseek-coder, "
                  "deepseek-v3, chameleon, falcon and their aliases)");
}

bool gguf_pre_ignores_merges(const std::string& name) {
  return name_in(name, {"llama3", "llama-v3", "llama-bpe", "falcon3"});
}

bool gguf_pre_adds_bos(const std::string& name) {
  return name_in(name, {"llama3", "llama-v3", "llama-bpe", "falcon3"});
}

}  // namespace rhead::detail

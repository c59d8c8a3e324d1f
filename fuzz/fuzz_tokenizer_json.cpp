// Fuzz target: a Hugging Face tokenizer.json, then one encode and decode with it.
#include "fuzz_support.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rhead;
  const std::string path = fuzz::write_scratch("tokenizer.json", fuzz::as_text(data, size));
  fuzz::expect_clean([&] {
    Tokenizer tok = Tokenizer::from_tokenizer_json(path);
    tok.decode(tok.encode("Hello world! 12345 <s> caf\xC3\xA9  ok", true, true));
  });
  return 0;
}

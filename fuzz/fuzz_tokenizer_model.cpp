// Fuzz target: a SentencePiece tokenizer.model (protobuf), then one encode and decode.
#include "fuzz_support.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rhead;
  const std::string path = fuzz::write_scratch("tokenizer.model", fuzz::as_text(data, size));
  fuzz::expect_clean([&] {
    Tokenizer tok = Tokenizer::from_sentencepiece_model(path);
    tok.decode(tok.encode("Hello world! 12345 caf\xC3\xA9  ok", true, true));
  });
  return 0;
}

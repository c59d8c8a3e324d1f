// Fuzz target: the GGUF reader, then the model config, tensor binding and tokenizer built
// from whatever it accepted.
#include "fuzz_support.h"
#include "io/gguf.h"
#include "model/loader.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rhead;
  const std::string path = fuzz::write_scratch("input.gguf", fuzz::as_text(data, size));
  fuzz::expect_clean([&] {
    GGUFFile g = GGUFFile::open(path);
    fuzz::expect_clean([&] { model_from_gguf(g); });
    if (g.find("tokenizer.ggml.model")) {
      Tokenizer tok = Tokenizer::from_gguf(g);
      tok.encode("Hello world, 123 times.", true, true);
    }
  });
  return 0;
}

// Fuzz target: the llama2.c checkpoint header and weights layout, and the same bytes read
// as a llama2.c tokenizer .bin.
#include "fuzz_support.h"
#include "model/loader.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rhead;
  const std::string path = fuzz::write_scratch("model.bin", fuzz::as_text(data, size));
  fuzz::expect_clean([&] { load_llama2c_model(path); });
  fuzz::expect_clean([&] { Tokenizer::from_llama2c(path).encode("Once upon a time", true, true); });
  return 0;
}

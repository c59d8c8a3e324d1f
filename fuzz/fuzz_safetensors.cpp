// Fuzz target: a Hugging Face directory. The input is config.json, one NUL byte, then
// model.safetensors (header and data); no NUL means the whole input is config.json and the
// safetensors file is empty.
#include <cstring>

#include "fuzz_support.h"
#include "io/safetensors.h"
#include "model/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rhead;
  const std::string_view all = fuzz::as_text(data, size);
  const size_t split = all.find('\0');
  const std::string_view config = all.substr(0, split);
  const std::string_view weights = split == std::string_view::npos ? std::string_view() : all.substr(split + 1);
  fuzz::write_scratch("config.json", config);
  const std::string st = fuzz::write_scratch("model.safetensors", weights);
  fuzz::expect_clean([&] { SafetensorsFile::open(st); });
  fuzz::expect_clean([&] { load_model(fuzz::scratch_dir()); });
  return 0;
}

// A KV cache larger than the machine is refused with one line that names the model file, how
// many positions were asked for and where that number came from.
#include <gtest/gtest.h>

#include <climits>
#include <memory>

#include "io/error.h"
#include "model/builtin.h"
#include "model/session.h"
#include "test_support.h"

namespace {

using namespace rhead;

TEST(SessionMemory, AKvCacheBeyondMemoryNamesTheModelAndWhereItsLengthCameFrom) {
  const LoadedModel lm = load_builtin_model("induction");
  auto huge = std::make_shared<Model>(*lm.model);
  huge->source = "huge-context.gguf";
  huge->config.n_ctx_train = INT_MAX;  // a context_length of 2^31 - 1 in the file
  const std::string from_file = rhead::testing::error_of([&] { Session s(huge, SessionOptions{}); });
  EXPECT_EQ(from_file.rfind("huge-context.gguf: a KV cache of 2147483647 positions (the model's context length; "
                            "--ctx holds fewer) needs ",
                            0),
            0u)
      << from_file;
  EXPECT_NE(from_file.find("out of host memory"), std::string::npos) << from_file;
  EXPECT_EQ(from_file.find('\n'), std::string::npos) << from_file;
  SessionOptions o;
  o.n_ctx = int64_t{1} << 40;
  const std::string from_option = rhead::testing::error_of([&] { Session s(lm.model, o); });
  EXPECT_NE(from_option.find("a KV cache of 1099511627776 positions (--ctx) needs"), std::string::npos) << from_option;
}

}  // namespace

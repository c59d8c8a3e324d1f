// MappedFile asks the kernel for 2 MiB pages on its map (MADV_HUGEPAGE), which the kernel
// records in the mapping's VmFlags ("hg" in /proc/self/smaps), and the bytes it maps are the
// file's.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "io/mapped_file.h"
#include "model/random_weights.h"

namespace rhead {
namespace {

using testing::TempDir;

// The VmFlags line of the /proc/self/smaps entry that holds address p; empty if none does.
std::string vm_flags_of(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto at = reinterpret_cast<uintptr_t>(p);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-') {  // a mapping's first line
      inside = lo <= at && at < hi;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line;
    }
  }
  return "";
}

TEST(MappedFile, MapAsksForHugePagesAndHoldsTheFile) {
  if (!std::filesystem::exists("/sys/kernel/mm/transparent_hugepage/enabled"))
    GTEST_SKIP() << "kernel without transparent huge pages";
  TempDir dir("rhead-map");
  const std::string path = dir / "big.bin";
  std::string bytes(size_t{4} << 20, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 2654435761u) >> 13);
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));

  auto file = MappedFile::open(path);
  ASSERT_EQ(file->size(), bytes.size());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(file->data()), file->size()), bytes);
  const std::string flags = vm_flags_of(file->data());
  ASSERT_FALSE(flags.empty()) << "no /proc/self/smaps entry holds the map";
  EXPECT_NE((flags + " ").find(" hg "), std::string::npos) << flags;
}

}  // namespace
}  // namespace rhead

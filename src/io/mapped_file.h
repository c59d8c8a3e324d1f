// A read-only memory map of a whole file, with bounds-checked views.
// Weights stay in the page cache; nothing is copied.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace rhead {

class MappedFile {
 public:
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Pointer to [offset, offset+len) or an Error naming the file and `what`.
  const uint8_t* view(uint64_t offset, uint64_t len, const std::string& what) const;

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Reads a whole (small) file into a string; Error if it cannot be read.
std::string read_text_file(const std::string& path);

}  // namespace rhead

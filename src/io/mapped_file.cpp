// Memory-mapped files and small-file reads.
#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "io/error.h"

namespace rhead {

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<size_t>(st.st_size);
  if (file->size_ > 0) {
    void* p = mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      fail(path, std::string("mmap failed: ") + std::strerror(errno));
    }
    // Ask for 2 MiB pages: when the kernel reads the file in on a fault it then reads whole
    // 2 MiB folios and maps each with one page-table entry, and other mappings of the file
    // share them. Decode streams every weight once per token, with 512 times fewer TLB misses
    // on 2 MiB pages (1.1B models, 2 threads: f16 decode 0-5% faster, q8_0 and q4_K 0-10%; see
    // docs/cpu_results.md). Pages already cached in small folios stay small; an error (no THP
    // in the kernel) changes nothing.
    (void)madvise(p, file->size_, MADV_HUGEPAGE);
    file->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return file;
}

MappedFile::~MappedFile() {
  if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

const uint8_t* MappedFile::view(uint64_t offset, uint64_t len, const std::string& what) const {
  if (offset > size_ || len > size_ - offset)
    fail(path_, what + " at offset " + std::to_string(offset) + " (+" + std::to_string(len) +
                    " bytes) lies past the end of the file (" + std::to_string(size_) + " bytes)");
  return data_ + offset;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    struct stat st;
    fail(path, ::stat(path.c_str(), &st) != 0 ? std::string("no such file")
                                              : "cannot open: " + std::string(std::strerror(err)));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace rhead

// Content digests of data files and identities of model files (io/file_identity.h).
#include "io/file_identity.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "io/error.h"

namespace rhead {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;

uint64_t mix(uint64_t h) {
  h ^= h >> 31;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 29;
  return h;
}

std::string hex(uint64_t v) {
  static const char* digits = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) s[i] = digits[v & 15];
  return s;
}

// Reads `len` bytes at `offset` of an open file; Error naming `path` on a short read.
std::string read_at(std::ifstream& in, const std::string& path, uint64_t offset, uint64_t len) {
  std::string buf(len, '\0');
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(buf.data(), static_cast<std::streamsize>(len));
  if (static_cast<uint64_t>(in.gcount()) != len) fail(path, "cannot be read");
  return buf;
}

std::vector<fs::path> regular_files(const std::string& dir, bool recursive) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (recursive) {
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
      if (it->is_regular_file()) out.push_back(it->path());
  } else {
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
      if (it->is_regular_file()) out.push_back(it->path());
  }
  if (ec) fail(dir, "cannot list the directory: " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

std::string file_content_digest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot be read");
  uint64_t h = 0, total = 0;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = static_cast<size_t>(in.gcount());
    if (n == 0) break;
    h = digest64(std::string_view(buf.data(), n), h ^ total);
    total += n;
  }
  return hex(mix(h ^ total));
}

}  // namespace

uint64_t digest64(std::string_view bytes, uint64_t seed) {
  uint64_t h = mix(seed + kMul + bytes.size());
  size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, bytes.data() + i, 8);
    h = mix(h ^ (w * kMul)) + kMul;
  }
  uint64_t tail = 0;
  for (size_t k = 0; i + k < bytes.size(); ++k) tail |= uint64_t(static_cast<uint8_t>(bytes[i + k])) << (8 * k);
  return mix(h ^ (tail * kMul) ^ bytes.size());
}

std::string digest_hex(std::string_view bytes) { return hex(digest64(bytes)); }

std::string content_digest(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return file_content_digest(path);
  std::string listing;
  for (const fs::path& f : regular_files(path, true))
    listing += fs::relative(f, path).string() + '\0' + file_content_digest(f.string()) + '\n';
  return digest_hex(listing);
}

std::string model_identity(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    std::string listing;
    for (const fs::path& f : regular_files(path, false))
      listing += f.filename().string() + '\0' + model_identity(f.string()) + '\n';
    return digest_hex(listing);
  }
  const uint64_t size = fs::file_size(path, ec);
  if (ec) fail(path, "cannot be read: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot be read");
  constexpr uint64_t kHead = 16ull << 20, kTail = 1ull << 20;
  const uint64_t head = std::min(size, kHead);
  const uint64_t tail = std::min(size - head, kTail);
  const std::string bytes = read_at(in, path, 0, head) + read_at(in, path, size - tail, tail);
  return std::to_string(size) + ":" + digest_hex(bytes);
}

}  // namespace rhead

// Atomic whole-file writes.
#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/error.h"
#include "io/json.h"

namespace rhead {

namespace {

// Whether `path` is a regular file holding exactly `text`.
bool holds_exactly(const std::string& path, const std::string& text) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || static_cast<size_t>(st.st_size) != text.size())
    return false;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::string have(text.size(), '\0');
  size_t done = 0;
  while (done < have.size()) {
    const ssize_t n = ::read(fd, have.data() + done, have.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return done == text.size() && have == text;
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& text) {
  if (holds_exactly(path, text)) return;
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(tmp, std::string("cannot open for writing: ") + std::strerror(errno));
  // Any failure from here on removes the .tmp before reporting.
  auto give_up = [&](const std::string& file, const char* step) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(file, std::string(step) + ": " + std::strerror(err));
  };
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      give_up(tmp, "write failed");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) give_up(tmp, "write failed");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(tmp, std::string("write failed: ") + std::strerror(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(path, std::string("cannot replace: ") + std::strerror(err));
  }
}

void write_files_journaled(const std::string& journal, const std::vector<FileText>& files) {
  nlohmann::json j = nlohmann::json::array();
  for (const FileText& f : files) j.push_back({{"path", f.path}, {"text", f.text}});
  write_file_atomic(journal, j.dump() + "\n");
  finish_journal(journal);
}

bool finish_journal(const std::string& journal) {
  if (!std::filesystem::exists(journal)) return false;
  const nlohmann::json j = read_json_file(journal);
  if (!j.is_array()) fail(journal, "not a write journal (expected an array of {path, text})");
  std::vector<FileText> files;
  for (const auto& e : j)
    files.push_back({json_string_field(e, "path", journal), json_string_field(e, "text", journal)});
  for (const FileText& f : files) write_file_atomic(f.path, f.text);
  if (std::remove(journal.c_str()) != 0) fail(journal, std::string("cannot remove: ") + std::strerror(errno));
  return true;
}

}  // namespace rhead

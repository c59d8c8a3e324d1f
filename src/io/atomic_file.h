// Whole-file writes that never leave a half-written file behind: write PATH.tmp, flush it
// to disk, rename it over PATH. On any failure the .tmp is removed and the Error names the
// file and the reason (errno text, e.g. "No space left on device"). A file that already
// holds exactly `text` is left alone, so rewriting unchanged metadata (run.json on resume)
// needs no free space.
#pragma once
#include <string>

namespace rhead {

void write_file_atomic(const std::string& path, const std::string& text);

}  // namespace rhead

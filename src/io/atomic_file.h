// Whole-file writes that never leave a half-written file behind: write PATH.tmp, flush it
// to disk, rename it over PATH. On any failure the .tmp is removed and the Error names the
// file and the reason (errno text, e.g. "No space left on device"). A file that already
// holds exactly `text` is left alone, so rewriting unchanged metadata (run.json on resume)
// needs no free space.
//
// Files that must change together (a merge target and the record of the tests it holds) go
// through a journal: the new texts are written to the journal first, then each file, then the
// journal is removed. A run that dies in between leaves the journal behind, and the next run
// calls finish_journal() before reading either file, so the files end as the interrupted run
// meant them to be and no test is counted twice.
#pragma once
#include <string>
#include <vector>

namespace rhead {

void write_file_atomic(const std::string& path, const std::string& text);

struct FileText {
  std::string path, text;
};

// Writes `files` in order through `journal` (see above).
void write_files_journaled(const std::string& journal, const std::vector<FileText>& files);

// Completes an interrupted write_files_journaled(); returns whether there was one.
bool finish_journal(const std::string& journal);

}  // namespace rhead

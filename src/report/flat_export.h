// Flat exports of a run folder for pandas, R or a spreadsheet: CSV files (RFC 4180: commas,
// a field holding a comma, quote or line break is quoted, quotes doubled; one header row).
//
// A detect run gives
//   heads.csv    one row per query head: head ("L-H"), layer, head_index, kv_head, mean,
//                frequency, counted_tests, rank (mean and rank empty when no test counted; rank
//                empty for heads scoring 0);
//   tests.csv    one row per test: test_id, needle_id, length, depth, prompt_tokens,
//                generated_tokens, rouge_recall, counted, support_share, error, seconds,
//                copying_heads ("L-H:score;..."), answer;
//   summary.csv  one row: tests, counted, niah_accuracy, mean_rouge_recall, retrieval_heads,
//                retrieval_share.
// A niah run gives
//   tests.csv    one row per test and condition: test_id, grid_test_id, mask, mask_kind,
//                mask_k, mask_seed, mask_heads ("L-H;..."), mask_mode, mask_phase, kv_window,
//                kv_sink, kv_kept_fraction, query_kept_fraction, needle_id, context_length,
//                depth_percent, prompt_tokens, generated_tokens, score, passed, error_kind,
//                support_share, seconds, model_response;
//   summary.csv  one row per condition (unmasked first): mask, mask_kind, mask_k, mask_seed,
//                mask_heads, tests, passed, mean_score, kv_kept_fraction.
// Numbers are written in full precision; a value that was not recorded is an empty field.
#pragma once
#include <string>
#include <vector>

namespace rhead::report {

// One field, quoted when it must be.
std::string csv_field(const std::string& value);

struct FlatFile {
  std::string name;  // "heads.csv", ...
  std::string text;
};

// The files of the run folder `dir` (a detect or niah run). Error naming `dir` otherwise.
std::vector<FlatFile> flat_exports(const std::string& dir);

// Writes them into `out_dir` (created when missing), each atomically; returns their paths.
std::vector<std::string> write_flat_exports(const std::string& dir, const std::string& out_dir);

}  // namespace rhead::report

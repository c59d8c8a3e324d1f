// What a run's results depend on in the files it read, as short strings that run.json records
// in its fingerprint: a file replaced at the same path (another model, edited needles or
// data) then no longer resumes or merges with the results of the old one.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace rhead {

// A 64-bit digest of `bytes` (not cryptographic: it tells files apart, it does not guard
// against someone forging one).
uint64_t digest64(std::string_view bytes, uint64_t seed = 0);
// digest64 as 16 hex digits.
std::string digest_hex(std::string_view bytes);

// The whole content of a file, or of every regular file under a directory (relative paths
// and contents, in sorted order): "sha-like" hex digest. For data files (needles, haystack,
// qa and cot items), which are small. Error naming `path` when it cannot be read.
std::string content_digest(const std::string& path);

// A model file's identity without reading its weights: its size and a digest of its first
// 16 MiB (a GGUF's header, metadata and tensor table; a safetensors header) and its last
// MiB. For a directory (Hugging Face layout) the identities of its files, by name. Reads at
// most 17 MiB a file.
std::string model_identity(const std::string& path);

}  // namespace rhead

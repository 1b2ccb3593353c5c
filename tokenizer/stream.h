// Line-by-line tokenization of a stream, for `uniter tokenize`: one output
// line per input line, in order, in constant memory (a bounded number of
// chunks of lines in flight), parallel with TBB in the caller's arena.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace uniter::tokenizer {

enum class OutputFormat {
  kIds,     // "101 2023 102"
  kTokens,  // "[CLS] this [SEP]"
  kJsonl,   // {"ids":[101,2023,102],"tokens":["[CLS]","this","[SEP]"]}
};

// Parses "ids" | "tokens" | "jsonl"; throws UsageError otherwise.
OutputFormat ParseOutputFormat(std::string_view name);

struct StreamOptions {
  OutputFormat format = OutputFormat::kIds;  // Default: ids
  bool add_special = false;                  // Default: no [CLS]/[SEP]
  size_t chunk_lines = 8192;                 // Default: 8192 lines per parallel chunk
  size_t chunk_bytes = 4 << 20;              // Default: or 4 MiB, whichever comes first
};

struct StreamStats {
  uint64_t lines = 0;
  uint64_t bytes = 0;
};

// Reads `in` to EOF; a line ends at '\n' (which is not part of the text; a
// final line without one counts too). `in_name` names the input in errors.
// Throws IoError on read/write failure. Memory: O(chunk size x live chunks),
// plus the longest line.
StreamStats TokenizeStream(const Tokenizer& tokenizer, std::FILE* in, const std::string& in_name,
                           std::FILE* out, const StreamOptions& options);

// One output line (without '\n') in `format` (used by TokenizeStream).
void FormatLine(const Tokenizer& tokenizer, const std::vector<int32_t>& ids, OutputFormat format,
                std::string* out);

}  // namespace uniter::tokenizer

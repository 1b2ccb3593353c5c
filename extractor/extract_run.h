// `uniter extract`: images -> BUTD region features -> an img_db, as a TBB
// pipeline (parallel decode, one network stage, parallel encode, one ordered
// LMDB writer). Bad images go to the rejects file and the run goes on.
#pragma once

#include <cstdint>
#include <string>

#include "extractor/config.h"

namespace uniter::extractor {

struct ExtractOptions {
  std::string images;      // a folder (its .jpg/.jpeg/.png files, sorted) or a text file of paths. Required.
  std::string prototxt;    // BUTD test.prototxt (or a narrowed one). Required.
  std::string weights;     // .caffemodel. Required.
  std::string out;         // img_db folder (the split folder). Required.
  std::string codec = "msgpack";  // Default: msgpack (UNITER's); npz, native.
  std::string key_suffix = ".npz";  // key = image file stem + this. Default: ".npz".
  std::string key_prefix;            // Default: none.
  int shard_index = 0, shard_count = 1;  // --shard k/N: every N-th image from the k-th.
  bool resume = false;     // skip keys already in the db
  bool force = false;      // delete an existing db first
  std::string rejects;     // Default: <out>/<db>.rejects.jsonl
  // Given-box mode (VCR, RefCOCO ground truth): a JSON object mapping an image
  // file name (or its stem) to [[x1, y1, x2, y2], ...] in image pixels. The
  // RPN and box selection are skipped, every given box is stored in the given
  // order (db `all`), conf = the best object class score. Default: none.
  std::string boxes_json;
  bool quiet = false;
  ExtractorConfig config;
};

struct ExtractResult {
  std::string db_path;
  std::string rejects_path;
  uint64_t written = 0, skipped = 0, rejected = 0;
  double seconds = 0;
  double decode_seconds = 0, network_seconds = 0, write_seconds = 0;  // summed over threads
};

// Throws UsageError for bad options, FormatError for a bad model; per-image
// failures are rejects.
ExtractResult RunExtract(const ExtractOptions& options);

}  // namespace uniter::extractor

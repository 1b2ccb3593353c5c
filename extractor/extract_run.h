// `uniter extract`: images -> BUTD region features -> an img_db, a folder of
// BUTD/UNITER .npz files or an LXMERT TSV, as one TBB flow graph:
//
//   list (shard, resume) -> limiter -> decode (parallel) -> batcher (input
//   order, equal InputSize, up to `batch`) -> one serial network node per
//   device -> encode (parallel) -> sequencer (input order) -> writer (serial)
//
// (the stages: extract_stages.h). The limiter holds at most a fixed number of
// images between listing and writing, so decoded images never pile up.
// Output is byte-identical for the same images and `batch`, whatever the
// device count or thread count. A different `batch` groups images
// differently, and an optimized BLAS rounds a [600, K] product's rows unlike
// a [300, K] one's: values then agree within a stated tolerance (tests:
// ExtractCli.BatchesAndDevicesDoNotChangeFeatures). Bad images go to the
// rejects file and the run goes on.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "extractor/config.h"

namespace uniter::extractor {

struct ExtractOptions {
  std::string images;      // a folder (its jpg/jpeg/jpe/png/bmp/webp/gif/tif/tiff files, sorted) or a text file of paths. Required.
  // The layer graph. Default (empty): the built-in BUTD test.prototxt, or
  // test_gt.prototxt with boxes_json (butd_net.h).
  std::string prototxt;
  std::string weights;     // .caffemodel. Required.
  // img_db: the split folder; npz: the folder; tsv: the file. Required. With
  // several shards, img_db and tsv outputs get a `.shard{k}of{N}` suffix
  // (`<out>.shard0of2/` for img_db, `<stem>.shard0of2.tsv`); npz shards share
  // the folder.
  std::string out;
  std::string format = "img_db";  // img_db, npz or tsv. Default: img_db.
  std::string codec = "msgpack";  // img_db values: msgpack (UNITER's), npz or native. Default: msgpack.
  std::string key_suffix = ".npz";  // img_db key = id + this. Default: ".npz".
  std::string key_prefix;           // id = prefix + file stem. Default: none.
  // When set, id = id_of(file stem) instead (a dataset's own naming, e.g.
  // Flickr30k's 123.jpg -> flickr30k_000000000123); key_prefix is ignored.
  std::function<std::string(const std::string&)> id_of;
  // "k/N": every N-th image from the k-th; "auto" (default): from torchrun
  // or SLURM variables when set, else all images (launch.h).
  std::string shard = "auto";
  // "cpu", "cuda", "cuda:N" or a comma list: one network node (and model)
  // per entry. Default: cpu. Overrides config.device.
  std::string devices = "cpu";
  int batch = 1;            // images of equal network input size per forward pass. Default: 1.
  int threads = 0;          // TBB threads (decode, encode) of this run's own arena; 0 (default) = all cores.
  // Larger images are rejected from their header, before decoding; <= 0: no
  // limit. Default: 178956970, image_io.h kDefaultMaxPixels (PIL's bomb limit).
  int64_t max_pixels = 178956970;
  bool resume = false;      // skip images already in the output
  bool force = false;       // start the output over
  std::string rejects;      // Default: beside the output (<db>.rejects.jsonl, <out>/extract.rejects.jsonl, <tsv>.rejects.jsonl)
  // Given-box mode (VCR, RefCOCO ground truth): a JSON object mapping an image
  // file name (or its stem) to [[x1, y1, x2, y2], ...] in image pixels. The
  // RPN and box selection are skipped, every given box is stored in the given
  // order (db `all`), conf = the best object class score. Default: none.
  std::string boxes_json;
  bool quiet = false;
  // Called from the writer (one thread) after each image written, skipped or
  // rejected, with (images done, this shard's images): a caller's display.
  std::function<void(uint64_t, uint64_t)> on_image;
  ExtractorConfig config;
};

struct ExtractResult {
  std::string output_path;   // db folder, npz folder or tsv file
  std::string rejects_path;
  int shard_index = 0, shard_count = 1;
  std::string shard_source;  // "--shard", "torchrun", "SLURM" or ""
  std::vector<std::string> devices;
  uint64_t written = 0, skipped = 0, rejected = 0;
  uint64_t batches = 0;      // network calls
  double seconds = 0;
  // Summed over threads.
  double decode_seconds = 0, network_seconds = 0, encode_seconds = 0, write_seconds = 0;
};

// Throws UsageError for bad options or an unusable device, FormatError for a
// bad model; per-image failures are rejects.
ExtractResult RunExtract(const ExtractOptions& options);

}  // namespace uniter::extractor

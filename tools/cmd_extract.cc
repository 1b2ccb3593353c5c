// `uniter extract`: BUTD region features for a folder of images into an
// img_db, npz folder or TSV; `uniter extract-tools make-caffemodel`: synthetic BUTD weights.
#ifdef UNITER_HAVE_TORCH
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <string>

#include "common/error.h"
#include "common/torch_runtime.h"
#include "extractor/extract_run.h"
#include "extractor/synthetic_model.h"
#include "tools/commands.h"

namespace uniter::tools {

void SetupExtractCommand(CLI::App& app) {
  auto o = std::make_shared<extractor::ExtractOptions>();
  CLI::App* sub = app.add_subcommand("extract", "BUTD Faster R-CNN region features for images -> img_db, npz or tsv");
  sub->footer(
      "Pipeline: parallel decode -> batcher (equal network input size) -> one network per --device -> parallel\n"
      "encode -> ordered writer. Bad images (corrupt, truncated, empty, not an image, over --max-pixels, no\n"
      "proposal) go to the rejects file and the run goes on; gray, alpha, 16-bit and CMYK images are converted\n"
      "as cv2.imread does.\n"
      "Several processes: --shard k/N, or under torchrun (RANK, WORLD_SIZE, LOCAL_RANK) or SLURM (SLURM_PROCID,\n"
      "SLURM_NTASKS, SLURM_LOCALID) the shard is picked from the environment and --device cuda means this\n"
      "process's local GPU. Shard k of N writes <out>.shardkofN (img_db; join with `uniter featdb merge <out>\n"
      "<out>.shard*/<db>`) or <stem>.shardkofN.tsv (tsv; concatenate); npz shards share the folder.");
  sub->add_option("--images", o->images, "folder of images, or a text file with one path per line")->required();
  sub->add_option("--prototxt", o->prototxt,
                  "the layer graph (default: BUTD's test.prototxt, or test_gt.prototxt with --boxes, built in)");
  sub->add_option("--weights", o->weights, "the .caffemodel")->required();
  sub->add_option("--out", o->out, "img_db: the split folder; npz: the folder; tsv: the .tsv file")->required();
  sub->add_option("--format", o->format,
                  "img_db (UNITER), npz (one BUTD/UNITER <id>.npz per image, for convert_imgdir.py / featdb pack) "
                  "or tsv (LXMERT/BUTD generate_tsv.py rows)")
      ->check(CLI::IsMember({"img_db", "npz", "tsv"}))
      ->capture_default_str();
  sub->add_option("--device", o->devices,
                  "cpu, cuda:N, cuda (= cuda:$LOCAL_RANK or $SLURM_LOCALID) or a list cuda:0,cuda:1 (one network each)")
      ->capture_default_str();
  sub->add_option("--batch", o->batch, "images of equal network input size per forward pass")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  auto& c = o->config;
  sub->add_option("--precision", c.precision, "fp32, fp16 or bf16 (autocast; outputs stay fp32)")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}))
      ->capture_default_str();
  sub->add_flag("--channels-last", c.channels_last, "NHWC convolutions (GPU, with fp16/bf16)");
  sub->add_option("--min-boxes", c.min_boxes, "at least this many boxes")->capture_default_str();
  sub->add_option("--max-boxes", c.max_boxes, "at most this many boxes")->capture_default_str();
  sub->add_option("--conf-th", c.conf_threshold, "confidence threshold")->capture_default_str();
  sub->add_option("--codec", o->codec, "img_db values: msgpack, npz or native")
      ->check(CLI::IsMember({"msgpack", "npz", "native"}))
      ->capture_default_str();
  sub->add_option("--shard", o->shard,
                  "k/N: this process takes every N-th image from the k-th; auto: from torchrun/SLURM variables, "
                  "else all")
      ->capture_default_str();
  sub->add_option("--max-pixels", o->max_pixels,
                  "reject larger images from their header, before decoding (default: PIL's decompression-bomb "
                  "limit; 0: none)")
      ->capture_default_str();
  sub->add_option("--threads", o->threads,
                  "threads for decode and encode (TBB) and for LibTorch's intra-op work (0: all cores)")->capture_default_str();
  sub->add_option("--key-prefix", o->key_prefix, "prefix of every image id / key (e.g. coco_val2014_)");
  sub->add_option("--rejects", o->rejects, "rejects file (default: beside the output)");
  sub->add_option("--boxes", o->boxes_json,
                  "given-box mode: JSON {image file or stem: [[x1,y1,x2,y2],...]}; skips the RPN, keeps every box (db `all`)");
  sub->add_flag("--resume", o->resume, "skip images already in the output (npz: files present; tsv: whole lines)");
  sub->add_flag("--force", o->force, "start the output over");
  sub->add_flag("--quiet,-q", o->quiet, "no progress output");
  sub->callback([o] {
    // LibTorch's thread count is process-wide: the command sets it, the library does not.
    ConfigureTorchThreads(o->threads);
    if (!o->quiet) std::fprintf(stderr, "extract: %s\n", FormatTorchRuntime(DescribeTorchRuntime()).c_str());
    const extractor::ExtractResult r = extractor::RunExtract(*o);
    std::printf("%s: %llu written, %llu already there, %llu rejected%s%s, %.1f s (%.2f images/s; %llu network "
                "calls on %zu device(s); shard %d/%d; decode %.1f s, network %.1f s, encode %.1f s, write %.1f s)\n",
                r.output_path.c_str(), static_cast<unsigned long long>(r.written),
                static_cast<unsigned long long>(r.skipped), static_cast<unsigned long long>(r.rejected),
                r.rejected ? " -> " : "", r.rejected ? r.rejects_path.c_str() : "", r.seconds,
                r.seconds > 0 ? r.written / r.seconds : 0.0, static_cast<unsigned long long>(r.batches),
                r.devices.size(), r.shard_index, r.shard_count, r.decode_seconds, r.network_seconds,
                r.encode_seconds, r.write_seconds);
  });
}

void SetupExtractToolsCommand(CLI::App& app) {
  CLI::App* tools = app.add_subcommand("extract-tools", "helpers for the extractor");
  tools->require_subcommand(1);
  auto o = std::make_shared<extractor::SyntheticModelOptions>();
  CLI::App* sub = tools->add_subcommand(
      "make-caffemodel", "write a synthetic BUTD .caffemodel (real layer names and shapes, random weights)");
  sub->add_option("--prototxt", o->prototxt, "source prototxt (default: BUTD's test.prototxt, built in)");
  sub->add_option("--out", o->out_caffemodel, "output .caffemodel")->required();
  sub->add_option("--out-prototxt", o->out_prototxt, "output prototxt matching the weights (needed when narrowed)");
  sub->add_option("--channel-divisor", o->channel_divisor, "divide backbone/res5/RPN widths by this (1: full size)")
      ->capture_default_str();
  sub->add_option("--res4-blocks", o->res4_blocks, "res4 blocks kept, 2..23 (res4a, res4b1.., res4b22)")
      ->capture_default_str();
  sub->add_option("--seed", o->seed, "random seed")->capture_default_str();
  sub->callback([o] {
    const int64_t n = extractor::WriteSyntheticModel(*o);
    std::printf("%s: %lld parameters\n", o->out_caffemodel.c_str(), static_cast<long long>(n));
  });
}

}  // namespace uniter::tools
#endif  // UNITER_HAVE_TORCH

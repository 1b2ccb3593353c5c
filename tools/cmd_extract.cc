// `uniter extract`: BUTD region features for a folder of images into an
// img_db; `uniter extract-tools make-caffemodel`: synthetic BUTD weights.
#ifdef UNITER_HAVE_TORCH
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <string>

#include "common/error.h"
#include "extractor/extract_run.h"
#include "extractor/synthetic_model.h"
#include "tools/commands.h"

namespace uniter::tools {

void SetupExtractCommand(CLI::App& app) {
  auto o = std::make_shared<extractor::ExtractOptions>();
  auto shard = std::make_shared<std::string>();
  auto device = std::make_shared<std::string>("cpu");
  CLI::App* sub = app.add_subcommand("extract", "BUTD Faster R-CNN region features for images -> img_db");
  sub->add_option("--images", o->images, "folder of images, or a text file with one path per line")->required();
  sub->add_option("--prototxt", o->prototxt, "BUTD test.prototxt (the layer graph)")->required();
  sub->add_option("--weights", o->weights, "the .caffemodel")->required();
  sub->add_option("--out", o->out, "img_db folder (the split folder)")->required();
  sub->add_option("--device", *device, "cpu (this build)")->capture_default_str();
  auto& c = o->config;
  sub->add_option("--min-boxes", c.min_boxes, "at least this many boxes")->capture_default_str();
  sub->add_option("--max-boxes", c.max_boxes, "at most this many boxes")->capture_default_str();
  sub->add_option("--conf-th", c.conf_threshold, "confidence threshold")->capture_default_str();
  sub->add_option("--codec", o->codec, "msgpack, npz or native")
      ->check(CLI::IsMember({"msgpack", "npz", "native"}))
      ->capture_default_str();
  sub->add_option("--shard", *shard, "k/N: this process takes every N-th image from the k-th");
  sub->add_option("--key-prefix", o->key_prefix, "prefix of every key (e.g. coco_val2014_)");
  sub->add_option("--rejects", o->rejects, "rejects file (default: <db>.rejects.jsonl)");
  sub->add_option("--boxes", o->boxes_json,
                  "given-box mode: JSON {image file or stem: [[x1,y1,x2,y2],...]}; skips the RPN, keeps every box (db `all`)");
  sub->add_flag("--resume", o->resume, "skip images already in the db");
  sub->add_flag("--force", o->force, "delete an existing db first");
  sub->add_flag("--quiet,-q", o->quiet, "no progress output");
  sub->callback([o, shard, device] {
    if (*device != "cpu") throw UsageError("--device " + *device + ": this build runs on the CPU only");
    if (!shard->empty()) {
      const auto slash = shard->find('/');
      if (slash == std::string::npos) throw UsageError("--shard wants k/N, got " + *shard);
      o->shard_index = std::stoi(shard->substr(0, slash));
      o->shard_count = std::stoi(shard->substr(slash + 1));
    }
    const extractor::ExtractResult r = extractor::RunExtract(*o);
    std::printf("%s: %llu written, %llu already there, %llu rejected%s%s, %.1f s (%.2f images/s; decode %.1f s, "
                "network+select+encode %.1f s, write %.1f s)\n",
                r.db_path.c_str(), static_cast<unsigned long long>(r.written),
                static_cast<unsigned long long>(r.skipped), static_cast<unsigned long long>(r.rejected),
                r.rejected ? " -> " : "", r.rejected ? r.rejects_path.c_str() : "", r.seconds,
                r.seconds > 0 ? r.written / r.seconds : 0.0, r.decode_seconds, r.network_seconds, r.write_seconds);
  });
}

void SetupExtractToolsCommand(CLI::App& app) {
  CLI::App* tools = app.add_subcommand("extract-tools", "helpers for the extractor");
  tools->require_subcommand(1);
  auto o = std::make_shared<extractor::SyntheticModelOptions>();
  CLI::App* sub = tools->add_subcommand(
      "make-caffemodel", "write a synthetic BUTD .caffemodel (real layer names and shapes, random weights)");
  sub->add_option("--prototxt", o->prototxt, "source prototxt (BUTD test.prototxt)")->required();
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

// `uniter featdb pack|convert|merge|verify`: build and maintain img_db/txt_db
// databases (featdb/pack.h, featdb/db_tools.h).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <string>

#include "common/error.h"
#include "featdb/db_tools.h"
#include "featdb/pack.h"
#include "tools/commands.h"

namespace uniter::tools {
namespace {

struct PackCli {
  featdb::PackOptions pack;
  std::string codec = "msgpack";
};

void AddPack(CLI::App& featdb) {
  auto o = std::make_shared<PackCli>();
  CLI::App* sub = featdb.add_subcommand("pack", "BUTD .npz feature files -> img_db (replaces UNITER's convert_imgdir.py)");
  sub->add_option("npz_dir", o->pack.npz_dir, "folder of <image>.npz files")->required();
  sub->add_option("img_db_dir", o->pack.img_db_dir, "output root; the db goes to <img_db_dir>/<basename of npz_dir>/")->required();
  auto& d = o->pack.db;
  d.num_bb = 100;  // convert_imgdir.py's default
  sub->add_option("--conf-th", d.conf_th, "confidence threshold for dynamic boxes; -1: fixed (feat_numbb<num-bb>)")->capture_default_str();
  sub->add_option("--max-bb", d.max_bb, "max boxes")->capture_default_str();
  sub->add_option("--min-bb", d.min_bb, "min boxes")->capture_default_str();
  sub->add_option("--num-bb", d.num_bb, "boxes when --conf-th -1 (names the db)")->capture_default_str();
  sub->add_flag("--keep-all", d.keep_all, "keep every box (db `all`, no nbb json)");
  sub->add_option("--codec", o->codec, "value codec: msgpack (UNITER's default), npz (UNITER's _compressed), native")
      ->check(CLI::IsMember({"msgpack", "npz", "native"}))
      ->capture_default_str();
  sub->add_option("--native-compression", d.native_compression, "native codec payload compression: auto (lz4 for features/norm_bb, zstd for the rest), lz4, zstd")
      ->check(CLI::IsMember({"auto", "lz4", "zstd"}))
      ->capture_default_str();
  sub->add_flag("--resume", d.resume, "continue an interrupted run: skip images already in the db");
  sub->add_flag("--force", d.force, "delete an existing db first");
  sub->add_option("--rejects", o->pack.rejects_path, "rejects file (default: <db>.rejects.jsonl)");
  sub->add_option("--commit-every", d.commit_every, "records per LMDB transaction")->capture_default_str();
  sub->add_option("--threads", o->pack.threads, "threads (default: all cores)");
  sub->add_flag("--quiet,-q", o->pack.quiet, "no progress output");
  sub->callback([o] {
    featdb::PackOptions p = o->pack;
    p.db.codec = featdb::CodecFromName(o->codec);
    const featdb::PackResult r = featdb::Pack(p);
    std::printf("%s: %llu written, %llu already there, %llu rejected%s%s, %.1f s (%.0f images/s)\n", r.db_path.c_str(),
                static_cast<unsigned long long>(r.written), static_cast<unsigned long long>(r.skipped),
                static_cast<unsigned long long>(r.rejected), r.rejected ? " -> " : "",
                r.rejected ? r.rejects_path.c_str() : "", r.seconds, r.seconds > 0 ? r.written / r.seconds : 0.0);
  });
}

void AddConvert(CLI::App& featdb) {
  auto o = std::make_shared<featdb::ConvertOptions>();
  auto codec = std::make_shared<std::string>("native");
  CLI::App* sub = featdb.add_subcommand("convert", "re-encode an img_db with another codec");
  sub->add_option("src_db", o->src_db, "source img_db folder (e.g. .../coco_val2014/feat_th0.2_max100_min10)")->required();
  sub->add_option("dst_dir", o->dst_dir, "split folder for the new db (may be the source's own)")->required();
  sub->add_option("--codec", *codec, "target codec: msgpack, npz, native")
      ->check(CLI::IsMember({"msgpack", "npz", "native"}))
      ->capture_default_str();
  sub->add_option("--native-compression", o->native_compression, "auto, lz4 or zstd")->check(CLI::IsMember({"auto", "lz4", "zstd"}));
  sub->add_flag("--resume", o->resume, "keep records already converted");
  sub->add_flag("--force", o->force, "delete an existing target db first");
  sub->add_flag("--quiet,-q", o->quiet, "no progress output");
  sub->callback([o, codec] {
    o->codec = featdb::CodecFromName(*codec);
    const auto r = featdb::Convert(*o);
    std::printf("%s: %llu records, %llu -> %llu value bytes\n", r.dst_db.c_str(), static_cast<unsigned long long>(r.records),
                static_cast<unsigned long long>(r.src_bytes), static_cast<unsigned long long>(r.dst_bytes));
  });
}

void AddMerge(CLI::App& featdb) {
  auto o = std::make_shared<featdb::MergeOptions>();
  CLI::App* sub = featdb.add_subcommand("merge", "merge shards (img_dbs with the same name, or txt_dbs) into one db");
  sub->add_option("out", o->out, "img_db: the output split folder; txt_db: the output db folder")->required();
  sub->add_option("shards", o->shards, "shard db folders")->required();
  sub->add_flag("--resume", o->resume, "keep records already in the output");
  sub->add_flag("--force", o->force, "delete an existing output db first");
  sub->add_flag("--quiet,-q", o->quiet, "no progress output");
  sub->callback([o] {
    const auto r = featdb::Merge(*o);
    std::printf("%s: %llu records merged, %llu duplicates skipped\n", r.out_db.c_str(),
                static_cast<unsigned long long>(r.records), static_cast<unsigned long long>(r.duplicates));
  });
}

void AddVerify(CLI::App& featdb) {
  auto db = std::make_shared<std::string>();
  CLI::App* sub = featdb.add_subcommand("verify", "check that every record decodes and the sidecars agree with the db");
  sub->add_option("db", *db, "txt_db or img_db folder")->required();
  sub->callback([db] {
    const auto r = featdb::Verify(*db);
    for (const auto& p : r.problems) std::printf("%s: %s\n", db->c_str(), p.c_str());
    if (!r.ok())
      throw FormatError(std::to_string(r.problems.size()) + " problem(s) in " + std::to_string(r.records) + " records", *db);
    std::printf("%s: ok (%s, %llu records)\n", db->c_str(), r.kind == featdb::DbKind::kTxt ? "txt_db" : "img_db",
                static_cast<unsigned long long>(r.records));
  });
}

}  // namespace

void SetupFeatdbCommand(CLI::App& app) {
  CLI::App* featdb = app.add_subcommand("featdb", "feature database tools: pack, convert, merge, verify");
  featdb->require_subcommand(1);
  AddPack(*featdb);
  AddConvert(*featdb);
  AddMerge(*featdb);
  AddVerify(*featdb);
}

}  // namespace uniter::tools

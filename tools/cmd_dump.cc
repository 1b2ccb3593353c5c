// `uniter dump <db> [key...]`: inspect a txt_db or img_db (featdb/dump.h).
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

#include "featdb/dump.h"
#include "tools/commands.h"

namespace uniter::tools {

void SetupDumpCommand(CLI::App& app) {
  auto o = std::make_shared<featdb::DumpOptions>();
  CLI::App* sub = app.add_subcommand("dump", "list keys, show records, or print statistics of a txt_db/img_db");
  sub->add_option("db", o->db, "the db folder (txt_db, or an img_db such as .../feat_th0.2_max100_min10)")->required();
  sub->add_option("keys", o->keys, "records to show (none: list the keys)");
  sub->add_option("--vocab", o->vocab, "vocab.txt: show input_ids as tokens too");
  sub->add_flag("--json", o->json, "JSON output for scripts");
  sub->add_flag("--stats", o->stats, "count, length/nbb histogram, bytes on disk, codec");
  sub->add_option("--rows", o->rows, "array rows shown")->capture_default_str();
  sub->add_option("--limit", o->limit, "list at most this many keys (0: all)");
  sub->callback([o] { featdb::Dump(*o, std::cout); });
}

}  // namespace uniter::tools

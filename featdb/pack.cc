#include "featdb/pack.h"

#include <tbb/info.h>
#include <tbb/parallel_pipeline.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <system_error>
#include <vector>

#include "common/error.h"
#include "common/progress.h"
#include "common/rejects.h"
#include "featdb/npy.h"

namespace fs = std::filesystem;

namespace uniter::featdb {
namespace {

struct Item {
  std::string path;
  std::string key;
  std::string value;  // encoded record; empty when rejected
  int nbb = 0;
  std::string error;
};

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open", path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw IoError("read failed", path);
  return ss.str();
}

}  // namespace

PackResult Pack(const PackOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  if (!fs::is_directory(o.npz_dir, ec)) throw UsageError("input folder does not exist", o.npz_dir);
  std::string in_dir = o.npz_dir;
  while (in_dir.size() > 1 && in_dir.back() == '/') in_dir.pop_back();
  const std::string split = fs::path(in_dir).filename().string();
  const std::string out_dir = o.img_db_dir + "/" + split;

  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(in_dir)) {
    const std::string name = e.path().filename().string();
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".npz") == 0) files.push_back(name);
  }
  std::sort(files.begin(), files.end());

  ImgDbWriter writer(out_dir, o.db);
  PackResult r;
  r.db_path = writer.db_path();
  r.inputs = files.size();
  r.rejects_path = o.rejects_path.empty() ? writer.db_path() + ".rejects.jsonl" : o.rejects_path;
  RejectsFile rejects(r.rejects_path, /*append=*/o.db.resume);

  std::vector<std::string> todo;
  todo.reserve(files.size());
  for (const auto& f : files) {
    if (o.db.resume && writer.Contains(f)) ++r.skipped;
    else todo.push_back(f);
  }

  const int threads = o.threads > 0 ? o.threads : tbb::info::default_concurrency();
  Progress progress("pack " + split, todo.size(), o.quiet);
  size_t next = 0;
  const tbb::filter<void, void> stages =
      tbb::make_filter<void, std::shared_ptr<Item>>(
          tbb::filter_mode::serial_in_order,
          [&](tbb::flow_control& fc) -> std::shared_ptr<Item> {
            if (next >= todo.size()) {
              fc.stop();
              return nullptr;
            }
            auto it = std::make_shared<Item>();
            it->key = todo[next++];
            it->path = in_dir + "/" + it->key;
            return it;
          }) &
          tbb::make_filter<std::shared_ptr<Item>, std::shared_ptr<Item>>(
              tbb::filter_mode::parallel,
              [&](std::shared_ptr<Item> it) {
                // A bad file becomes a rejects entry, never an aborted run.
                try {
                  const std::vector<Array> arrays = ReadNpz(ReadWholeFile(it->path), it->path);
                  PreparedRecord p = PrepareImgRecord(arrays, o.db);
                  it->nbb = p.nbb;
                  it->value = EncodeImgRecord(p.arrays, o.db.codec, o.db);
                } catch (const Error& e) {
                  it->error = e.message();
                } catch (const std::exception& e) {
                  it->error = e.what();
                }
                return it;
              }) &
          tbb::make_filter<std::shared_ptr<Item>, void>(
              tbb::filter_mode::serial_in_order, [&](std::shared_ptr<Item> it) {
                if (!it->error.empty()) {
                  rejects.Add({it->path, 0, it->key, it->error});
                } else {
                  r.value_bytes += it->value.size();
                  writer.PutEncoded(it->key, std::move(it->value), it->nbb);
                  ++r.written;
                }
                progress.Add();
              });
  // An arena of our own, not tbb::global_control: a library call must not
  // change the process-wide thread limit under its caller.
  tbb::task_arena arena(threads);
  arena.execute([&] { tbb::parallel_pipeline(static_cast<size_t>(threads) * 2, stages); });
  writer.Close();
  progress.Finish();
  r.rejected = rejects.count();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace uniter::featdb

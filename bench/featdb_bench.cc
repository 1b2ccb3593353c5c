// featdb benchmark: random read + decode of img_db records per codec, against
// UNITER's Python reader (bench/featdb_python_reader.py) on the same LMDBs in
// the same run; bytes on disk per codec; the native codec's hand-written parser
// against libprotobuf's generated classes; pack throughput.
//
//   featdb_bench [--records N] [--reads N] [--dir DIR] [--python PY] [--codecs LIST] [--repeat N] [--no-pack]
//
// --codecs: comma-separated labels' first words to run (e.g. "npz" or
// "npz,native"; default all); ratios need msgpack and npz. --repeat N measures
// each read rate N times back to back, C++ and Python alternating, and prints
// every pair (the machine is shared; one pair is one comparison).
//
// Records are synthetic but shaped like BUTD's: post-ReLU features (most
// entries zero), softmax soft labels over 1601 classes, boxes inside the
// image, conf sorted descending; stored as fp16 like convert_imgdir.py does.
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "featdb/codecs.h"
#include "featdb/img_db.h"
#include "featdb/lmdb_env.h"
#include "featdb/native_pb.h"
#include "featdb/npy.h"
#include "featdb/pack.h"

namespace fs = std::filesystem;
using namespace uniter::featdb;

namespace {

double Now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::vector<Array> SyntheticRecord(int n, std::mt19937& rng) {
  std::normal_distribution<float> g(0, 1);
  std::uniform_real_distribution<float> u(0, 1);
  std::vector<float> feat(static_cast<size_t>(n) * 2048), bb(n * 6), conf(n), soft(static_cast<size_t>(n) * 1601);
  // ReLU of a shifted Gaussian: ~35% non-zero, long tail, like res5c pooled features.
  for (float& x : feat) x = std::max(0.0f, g(rng) - 0.4f) * 1.8f;
  for (int i = 0; i < n; ++i) {
    const float w = 0.05f + 0.6f * u(rng), h = 0.05f + 0.6f * u(rng);
    const float x1 = u(rng) * (1 - w), y1 = u(rng) * (1 - h);
    float* b = &bb[i * 6];
    b[0] = x1, b[1] = y1, b[2] = x1 + w, b[3] = y1 + h, b[4] = w, b[5] = h;
    conf[i] = u(rng);
  }
  std::sort(conf.begin(), conf.end(), std::greater<float>());
  for (int i = 0; i < n; ++i) {
    float* row = &soft[static_cast<size_t>(i) * 1601];
    float mx = -1e30f, sum = 0;
    for (int k = 0; k < 1601; ++k) mx = std::max(mx, row[k] = g(rng) * 2.0f);
    for (int k = 0; k < 1601; ++k) sum += row[k] = std::exp(row[k] - mx);
    for (int k = 0; k < 1601; ++k) row[k] /= sum;
  }
  return {Array::FromFloat32("features", {n, 2048}, feat), Array::FromFloat32("norm_bb", {n, 6}, bb),
          Array::FromFloat32("conf", {n}, conf), Array::FromFloat32("soft_labels", {n, 1601}, soft)};
}

struct DbSpec {
  std::string label;
  Codec codec;
  std::string native_compression;
};

uint64_t DirBytes(const std::string& db) {
  struct stat st{};
  ::stat((db + "/data.mdb").c_str(), &st);
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

// What the trainer does per image: LMDB get, decode features + norm_bb, widen to fp32.
double CppReadRate(const std::string& db, const std::vector<std::string>& order, bool all_arrays) {
  ImgDbReader r(db);
  double checksum = 0;
  const double t0 = Now();
  for (const std::string& k : order) {
    auto arrays = r.Get(k, all_arrays ? std::vector<std::string>{} : std::vector<std::string>{"features", "norm_bb"});
    for (const Array& a : *arrays) {
      if (a.name != "features" && a.name != "norm_bb" && !all_arrays) continue;
      const std::vector<float> f = a.ToFloat32();
      checksum += f[f.size() / 2];
    }
  }
  const double dt = Now() - t0;
  if (checksum == -1) std::printf("%f", checksum);  // keep the work
  return static_cast<double>(order.size()) / dt;
}

// Native records only: LMDB get (a view into the map) + decode with the
// hand-written parser or libprotobuf's generated classes, same decode after
// the parse. Returns records/s.
double NativeReadRate(const std::string& db, const std::vector<std::string>& order, bool all_arrays, bool pb) {
  LmdbEnv env(db, true);
  LmdbReadTxn txn(env);
  const std::vector<std::string> only = all_arrays ? std::vector<std::string>{} : std::vector<std::string>{"features", "norm_bb"};
  size_t checksum = 0;
  const double t0 = Now();
  for (const std::string& k : order) {
    const std::string_view v = *txn.Get(k);
    const std::vector<Array> arrays = pb ? DecodeNativePb(v, only) : DecodeNative(v, only);
    for (const Array& a : arrays) checksum += static_cast<unsigned char>(a.data[a.data.size() / 2]);
  }
  const double dt = Now() - t0;
  if (checksum == 1) std::printf("%zu", checksum);  // keep the work
  return static_cast<double>(order.size()) / dt;
}

// Hand-written vs libprotobuf parse, alternating, `repeat` pairs; prints the
// median cost of libprotobuf relative to the hand-written read+decode.
void CompareNativeParsers(const std::string& label, const std::string& db, const std::vector<std::string>& order, int repeat) {
  for (bool all : {false, true}) {
    std::vector<double> extra;
    std::printf("  %s, %s: hand-written vs libprotobuf read+decode/s:", label.c_str(), all ? "all arrays" : "features+norm_bb");
    for (int r = 0; r < std::max(3, repeat); ++r) {
      const double hand = NativeReadRate(db, order, all, false), pb = NativeReadRate(db, order, all, true);
      extra.push_back(hand / pb - 1);  // time per record with libprotobuf / hand-written - 1
      std::printf(" (%.0f, %.0f)", hand, pb);
    }
    std::sort(extra.begin(), extra.end());
    std::printf("\n    libprotobuf costs %+.1f%% of the hand-written read+decode (median of %zu pairs)\n",
                100 * extra[extra.size() / 2], extra.size());
  }
}

double PythonReadRate(const std::string& python, const std::string& script, const std::string& db, const std::string& keys_file,
                      bool compressed, bool all_arrays) {
  const std::string cmd = "'" + python + "' '" + script + "' '" + db + "' '" + keys_file + "' " + (compressed ? "1" : "0") + " " +
                          (all_arrays ? "1" : "0");
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return 0;
  char buf[256] = {0};
  const size_t n = fread(buf, 1, sizeof(buf) - 1, p);
  buf[n] = 0;
  if (pclose(p) != 0) return 0;
  return std::atof(buf);
}

}  // namespace

int main(int argc, char** argv) {
  int records = 200, reads = 400;
  std::string dir = (fs::temp_directory_path() / "uniter_featdb_bench").string();
  std::string python = std::string(std::getenv("HOME") ? std::getenv("HOME") : "") + "/.cache/uniter/venv/bin/python";
  std::string script = std::string(UNITER_BENCH_SOURCE_DIR) + "/featdb_python_reader.py";
  std::string codecs;
  int repeat = 1;
  bool pack = true;
  for (int i = 1; i < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--no-pack") {
      pack = false;
      --i;
      continue;
    }
    if (i + 1 >= argc) break;
    if (a == "--records") records = std::atoi(argv[i + 1]);
    else if (a == "--codecs") codecs = "," + std::string(argv[i + 1]) + ",";
    else if (a == "--repeat") repeat = std::max(1, std::atoi(argv[i + 1]));
    else if (a == "--reads") reads = std::atoi(argv[i + 1]);
    else if (a == "--dir") dir = argv[i + 1];
    else if (a == "--python") python = argv[i + 1];
  }
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::vector<DbSpec> specs = {{"msgpack (UNITER default)", Codec::kMsgpack, ""},
                                     {"npz (UNITER _compressed)", Codec::kNpz, ""},
                                     {"native auto", Codec::kNative, "auto"},
                                     {"native lz4", Codec::kNative, "lz4"},
                                     {"native zstd-3", Codec::kNative, "zstd"}};
  std::printf("featdb bench: %d records per size, %d random reads per measurement\n", records, reads);
  for (int boxes : {36, 100}) {
    std::mt19937 rng(1234 + boxes);
    std::vector<std::vector<Array>> recs;
    for (int i = 0; i < records; ++i) {
      std::vector<Array> r;
      for (Array& a : SyntheticRecord(boxes, rng)) r.push_back(ToStorageDType(std::move(a)));
      recs.push_back(std::move(r));
    }
    std::vector<std::string> keys;
    for (int i = 0; i < records; ++i) {
      char k[64];
      std::snprintf(k, sizeof(k), "coco_train2014_%012d.npz", i);
      keys.push_back(k);
    }
    std::mt19937 pick(99);
    std::vector<std::string> order;
    for (int i = 0; i < reads; ++i) order.push_back(keys[pick() % keys.size()]);
    const std::string keys_file = dir + "/keys_" + std::to_string(boxes) + ".txt";
    {
      FILE* f = std::fopen(keys_file.c_str(), "w");
      for (const auto& k : order) std::fprintf(f, "%s\n", k.c_str());
      std::fclose(f);
    }
    std::printf("\n== %d boxes (raw fp16 record %.0f KB)\n", boxes, boxes * (2048 + 1601 + 7) * 2 / 1024.0);
    std::printf("%-26s %12s %10s %14s %14s %12s %12s\n", "codec", "bytes/rec", "encode/s", "read+dec/s", "all arrays/s",
                "python/s", "python all/s");
    std::map<std::string, double> rate;
    std::vector<std::pair<std::string, std::string>> native_dbs;  // label, db
    double py_msgpack = 0, py_npz = 0;
    for (const DbSpec& s : specs) {
      if (!codecs.empty() && codecs.find("," + s.label.substr(0, s.label.find(' ')) + ",") == std::string::npos) continue;
      const std::string split = dir + "/b" + std::to_string(boxes) + "_" + std::to_string(&s - specs.data());
      ImgDbOptions o;
      o.codec = s.codec;
      o.native_compression = s.native_compression.empty() ? "auto" : s.native_compression;
      o.conf_th = -1;
      o.num_bb = boxes;
      uint64_t bytes = 0;
      double enc = 0;
      std::string db;
      {  // the writer's env must be closed before a reader opens the same db in this process
        ImgDbWriter w(split, o);
        const double t0 = Now();
        for (int i = 0; i < records; ++i) {
          std::string v = EncodeImgRecord(recs[i], s.codec, o);
          bytes += v.size();
          w.PutEncoded(keys[i], std::move(v), boxes);
        }
        enc = records / (Now() - t0);
        w.Close();
        db = w.db_path();
      }
      const double cpp = CppReadRate(db, order, false);
      const double cpp_all = CppReadRate(db, order, true);
      double py = 0, py_all = 0;
      if (s.codec != Codec::kNative) {
        py = PythonReadRate(python, script, db, keys_file, s.codec == Codec::kNpz, false);
        py_all = PythonReadRate(python, script, db, keys_file, s.codec == Codec::kNpz, true);
        (s.codec == Codec::kNpz ? py_npz : py_msgpack) = py;
        // Extra back-to-back pairs: the C++ ÷ Python ratio of each, then the medians.
        if (repeat > 1) {
          std::vector<double> c_rates{cpp}, p_rates{py}, ratios{py > 0 ? cpp / py : 0};
          for (int r = 1; r < repeat; ++r) {
            c_rates.push_back(CppReadRate(db, order, false));
            p_rates.push_back(PythonReadRate(python, script, db, keys_file, s.codec == Codec::kNpz, false));
            ratios.push_back(p_rates.back() > 0 ? c_rates.back() / p_rates.back() : 0);
          }
          std::printf("  %s pairs (C++/s, python/s, ratio):", s.label.c_str());
          for (size_t r = 0; r < ratios.size(); ++r) std::printf(" (%.0f, %.0f, %.1fx)", c_rates[r], p_rates[r], ratios[r]);
          auto median = [](std::vector<double> v) {
            std::sort(v.begin(), v.end());
            return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
          };
          std::printf("\n  %s median ratio %.1fx\n", s.label.c_str(), median(ratios));
        }
      }
      rate[s.label] = cpp;
      if (s.codec == Codec::kNative) native_dbs.emplace_back(s.label, db);
      std::printf("%-26s %12.0f %10.0f %14.0f %14.0f %12s %12s   (data.mdb %.1f MB)\n", s.label.c_str(),
                  static_cast<double>(bytes) / records, enc, cpp, cpp_all, py > 0 ? std::to_string(static_cast<int>(py)).c_str() : "-",
                  py_all > 0 ? std::to_string(static_cast<int>(py_all)).c_str() : "-", DirBytes(db) / 1e6);
    }
    for (const auto& [label, db] : native_dbs) CompareNativeParsers(label, db, order, repeat);
    if (py_npz > 0 && py_msgpack > 0 && rate.count("native auto")) {
      std::printf("ratios (read features+norm_bb, fp32 out):\n");
      std::printf("  native auto / python npz reader    = %.1fx\n", rate["native auto"] / py_npz);
      std::printf("  native auto / python msgpack reader= %.1fx\n", rate["native auto"] / py_msgpack);
      std::printf("  native lz4 / python npz reader     = %.1fx\n", rate["native lz4"] / py_npz);
      std::printf("  native zstd / python npz reader    = %.1fx\n", rate["native zstd-3"] / py_npz);
      std::printf("  npz in C++ / python npz reader     = %.1fx\n", rate["npz (UNITER _compressed)"] / py_npz);
      std::printf("  msgpack in C++ / python msgpack    = %.1fx\n", rate["msgpack (UNITER default)"] / py_msgpack);
    } else if (py_npz > 0) {
      std::printf("ratio (read features+norm_bb, fp32 out): npz in C++ / python npz reader = %.1fx\n",
                  rate["npz (UNITER _compressed)"] / py_npz);
    } else if (codecs.empty()) {
      std::printf("(python reader unavailable: %s)\n", python.c_str());
    }
  }
  // Pack throughput: BUTD-style fp32 .npz files → img_db, 2 threads.
  if (pack) {
    const std::string in = dir + "/pack_in/coco_val2014";
    fs::create_directories(in);
    std::mt19937 rng(7);
    const int files = std::max(16, records / 4);
    for (int i = 0; i < files; ++i) {
      char name[64];
      std::snprintf(name, sizeof(name), "/coco_val2014_%012d.npz", i);
      const std::string bytes = WriteNpz(SyntheticRecord(10 + static_cast<int>(rng() % 91), rng), true);
      FILE* f = std::fopen((in + name).c_str(), "wb");
      std::fwrite(bytes.data(), 1, bytes.size(), f);
      std::fclose(f);
    }
    std::printf("\n== pack: %d BUTD .npz files (fp32, 10-100 boxes), 2 threads\n", files);
    for (const char* c : {"msgpack", "npz", "native"}) {
      PackOptions p;
      p.npz_dir = in;
      p.img_db_dir = dir + "/pack_out_" + c;
      p.db.codec = CodecFromName(c);
      p.threads = 2;
      p.quiet = true;
      const PackResult r = Pack(p);
      std::printf("  %-8s %6.1f images/s  (%llu written, %.1f MB of values)\n", c, r.written / r.seconds,
                  static_cast<unsigned long long>(r.written), r.value_bytes / 1e6);
    }
  }
  fs::remove_all(dir);
  return 0;
}

#include "featdb/img_db.h"

#include <nlohmann/json.hpp>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <system_error>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/py_json.h"
#include "common/utf8.h"
#include "featdb/codecs.h"
#include "featdb/lmdb_env.h"
#include "featdb/npy.h"
#include "featdb/txt_db.h"

namespace fs = std::filesystem;

namespace uniter::featdb {

constexpr std::string_view kKeysKey = "__keys__";

const char* CodecName(Codec c) {
  switch (c) {
    case Codec::kNpz: return "npz";
    case Codec::kMsgpack: return "msgpack";
    case Codec::kNative: return "native";
  }
  return "?";
}

Codec CodecFromName(std::string_view name) {
  if (name == "npz") return Codec::kNpz;
  if (name == "msgpack") return Codec::kMsgpack;
  if (name == "native") return Codec::kNative;
  throw UsageError("codec must be npz, msgpack or native, not '" + std::string(name) + "'");
}

std::string PythonFloatRepr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  // Shortest round-trip digits, then Python's repr layout: positional for
  // decimal exponents in [-4, 16), else scientific with a 2+ digit exponent.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  const size_t e_pos = sci.find('e');
  std::string mant = sci.substr(0, e_pos);
  const int exp = std::stoi(sci.substr(e_pos + 1));
  std::string sign;
  if (!mant.empty() && mant[0] == '-') {
    sign = "-";
    mant.erase(0, 1);
  }
  std::string digits;
  for (char c : mant)
    if (c != '.') digits.push_back(c);
  if (exp >= -4 && exp < 16) {
    std::string out;
    if (exp < 0) {
      out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    } else if (static_cast<int>(digits.size()) <= exp + 1) {
      out = digits + std::string(static_cast<size_t>(exp + 1 - static_cast<int>(digits.size())), '0') + ".0";
    } else {
      out = digits.substr(0, exp + 1) + "." + digits.substr(exp + 1);
    }
    return sign + out;
  }
  std::string out = digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char ebuf[16];
  std::snprintf(ebuf, sizeof(ebuf), "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
  return sign + out + ebuf;
}

std::string ImgDbName(const ImgDbOptions& o) {
  std::string name;
  if (o.keep_all) name = "all";
  else if (o.conf_th < 0) name = "feat_numbb" + std::to_string(o.num_bb);
  else name = "feat_th" + PythonFloatRepr(o.conf_th) + "_max" + std::to_string(o.max_bb) + "_min" + std::to_string(o.min_bb);
  if (o.codec == Codec::kNpz) name += "_compressed";
  if (o.codec == Codec::kNative) name += "_native";
  return name;
}

std::string NbbJsonName(const ImgDbOptions& o) {
  if (o.keep_all || o.conf_th < 0) return "";
  return "nbb_th" + PythonFloatRepr(o.conf_th) + "_max" + std::to_string(o.max_bb) + "_min" + std::to_string(o.min_bb) + ".json";
}

std::optional<ImgDbOptions> ParseImgDbName(std::string_view name) {
  ImgDbOptions o;
  o.codec = Codec::kMsgpack;
  auto strip = [&](std::string_view suffix) {
    if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix) {
      name.remove_suffix(suffix.size());
      return true;
    }
    return false;
  };
  if (strip("_compressed")) o.codec = Codec::kNpz;
  else if (strip("_native")) o.codec = Codec::kNative;
  if (name == "all") {
    o.keep_all = true;
    return o;
  }
  std::string s(name);
  int n = 0, a = 0, b = 0;
  char th[64];
  if (std::sscanf(s.c_str(), "feat_numbb%d%n", &a, &n) == 1 && static_cast<size_t>(n) == s.size()) {
    o.conf_th = -1;
    o.num_bb = a;
    return o;
  }
  if (std::sscanf(s.c_str(), "feat_th%63[^_]_max%d_min%d%n", th, &a, &b, &n) == 3 && static_cast<size_t>(n) == s.size()) {
    char* end = nullptr;
    o.conf_th = std::strtod(th, &end);
    if (*end) return std::nullopt;
    o.max_bb = a;
    o.min_bb = b;
    return o;
  }
  return std::nullopt;
}

int ComputeNbb(const Array& conf, double conf_th, int max_bb, int min_bb) {
  // numpy compares a float array with a Python float in the array's dtype.
  int64_t count = 0;
  const int64_t n = conf.NumElements();
  if (conf.dtype == DType::kFloat32) {
    const float th = static_cast<float>(conf_th);
    for (int64_t i = 0; i < n; ++i) {
      float v;
      std::memcpy(&v, conf.data.data() + 4 * i, 4);
      count += v > th;
    }
  } else if (conf.dtype == DType::kFloat16) {
    const float th = HalfToFloat(FloatToHalf(static_cast<float>(conf_th)));
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, conf.data.data() + 2 * i, 2);
      count += HalfToFloat(h) > th;
    }
  } else {
    for (int64_t i = 0; i < n; ++i) count += conf.At(i) > conf_th;
  }
  int64_t nbb = std::max<int64_t>(min_bb, count);
  nbb = std::min<int64_t>(max_bb, nbb);
  return static_cast<int>(nbb);
}

PreparedRecord PrepareImgRecord(const std::vector<Array>& arrays, const ImgDbOptions& options) {
  for (const Array& a : arrays) a.Validate("");
  // Structural checks UNITER's loader relies on, so a bad file is rejected here
  // rather than breaking training later.
  const Array* feat = FindArray(arrays, "features");
  const Array* bb = FindArray(arrays, "norm_bb");
  const Array* conf = FindArray(arrays, "conf");
  if (!feat) throw FormatError("missing array 'features'");
  if (!bb) throw FormatError("missing array 'norm_bb'");
  if (!conf && !options.keep_all) throw FormatError("missing array 'conf'");
  if (feat->shape.size() != 2) throw FormatError("'features' must be 2-d, got " + std::to_string(feat->shape.size()) + "-d");
  if (bb->shape.size() != 2 || bb->shape[1] != 6)
    throw FormatError("'norm_bb' must be [N, 6]");
  const int64_t rows = feat->shape[0];
  if (rows == 0) throw FormatError("image has zero boxes");
  for (const Array& a : arrays) {
    if (a.shape.size() != 1 && a.shape.size() != 2) throw FormatError("wrong ndim: array '" + a.name + "' is " + std::to_string(a.shape.size()) + "-d");
    if ((a.name == "norm_bb" || a.name == "conf" || a.name == "soft_labels") && a.shape[0] != rows)
      throw FormatError("array '" + a.name + "' has " + std::to_string(a.shape[0]) + " rows, 'features' has " + std::to_string(rows));
    const bool known = a.name == "features" || a.name == "norm_bb" || a.name == "conf" || a.name == "soft_labels";
    if (known && !IsFloat(a.dtype))
      throw FormatError("array '" + a.name + "' has dtype " + DTypeName(a.dtype) + ", expected a float type");
    if (IsFloat(a.dtype) && (a.name == "features" || a.name == "norm_bb" || a.name == "conf" || a.name == "soft_labels")) {
      const std::vector<float> f = a.ToFloat32();
      for (float x : f)
        if (!std::isfinite(x)) throw FormatError("array '" + a.name + "' holds NaN or Inf");
    }
  }
  PreparedRecord out;
  out.nbb = options.keep_all ? static_cast<int>(rows) : ComputeNbb(*conf, options.conf_th, options.max_bb, options.min_bb);
  out.arrays.reserve(arrays.size());
  for (const Array& a : arrays) {
    Array s = ToStorageDType(a);
    if (!options.keep_all) s = TruncateRows(s, out.nbb);
    out.arrays.push_back(std::move(s));
  }
  return out;
}

std::string EncodeImgRecord(const std::vector<Array>& arrays, Codec codec, const ImgDbOptions& options) {
  switch (codec) {
    case Codec::kNpz: return WriteNpz(arrays, /*compress=*/true);
    case Codec::kMsgpack: return EncodeMsgpackNumpy(arrays);
    case Codec::kNative: {
      NativeOptions n;
      n.compression = options.native_compression;
      n.zstd_level = options.zstd_level;
      return EncodeNative(arrays, n);
    }
  }
  return {};
}

Codec DetectCodec(std::string_view v) {
  if (v.size() >= 4 && std::memcmp(v.data(), "PK\x03\x04", 4) == 0) return Codec::kNpz;
  if (IsNative(v)) return Codec::kNative;
  return Codec::kMsgpack;
}

std::vector<Array> DecodeImgRecord(std::string_view value, const std::vector<std::string>& only) {
  switch (DetectCodec(value)) {
    case Codec::kNpz: return ReadNpz(value, "", only);
    case Codec::kNative: return DecodeNative(value, only);
    case Codec::kMsgpack: return DecodeMsgpackNumpy(value, only);
  }
  return {};
}

// ---------------------------------------------------------------- writer

ImgDbWriter::ImgDbWriter(const std::string& img_db_dir, const ImgDbOptions& options)
    : dir_(img_db_dir), options_(options) {
  const std::string name = ImgDbName(options);
  db_path_ = dir_ + "/" + name;
  const bool with_nbb = !NbbJsonName(options).empty();
  if (with_nbb) nbb_log_path_ = dir_ + "/." + name + ".nbb.log";
  if (IsLmdbDir(db_path_)) {
    if (options.force) {
      RemoveLmdb(db_path_);
      std::error_code ec;
      if (with_nbb) {
        fs::remove(nbb_log_path_, ec);
        fs::remove(dir_ + "/" + NbbJsonName(options), ec);
      }
    } else if (!options.resume) {
      throw UsageError("an img_db already exists here (use --resume to continue it or --force to replace it)", db_path_);
    }
  }
  db_ = std::make_unique<LmdbWriter>(db_path_, options.commit_every);
  if (with_nbb) {
    // What earlier runs knew: a finished json, then the log of an interrupted run.
    const nlohmann::json done = ReadJsonFile(dir_ + "/" + NbbJsonName(options));
    if (done.is_object())
      for (auto it = done.begin(); it != done.end(); ++it)
        if (it.value().is_number_integer()) nbb_[it.key()] = it.value().get<int>();
    std::ifstream log(nbb_log_path_);
    std::string line;
    while (std::getline(log, line)) {
      try {
        const nlohmann::json j = nlohmann::json::parse(line);
        nbb_[j.at(0).get<std::string>()] = j.at(1).get<int>();
      } catch (const nlohmann::json::exception&) {
        // A line cut by a kill: its record was not committed either.
      }
    }
    db_->SetBeforeCommit([this] { AppendNbbLog(); });
  }
}

ImgDbWriter::~ImgDbWriter() {
  try {
    if (!closed_) db_->Commit();  // keep what was written; Close() is for a finished run
  } catch (const std::exception& e) {
    std::fprintf(stderr, "uniter: error: %s\n", e.what());
  }
}

void ImgDbWriter::AppendNbbLog() {
  if (pending_nbb_.empty()) return;
  // Logged before the LMDB commit: a kill in between leaves extra log lines,
  // which Close() ignores for keys the db lacks; never a committed key without its nbb.
  std::string text;
  for (const auto& [k, n] : pending_nbb_) text += nlohmann::json::array({k, n}).dump() + "\n";
  std::FILE* f = std::fopen(nbb_log_path_.c_str(), "ab");
  if (!f) ThrowErrno("cannot append", nbb_log_path_);
  const size_t w = std::fwrite(text.data(), 1, text.size(), f);
  const int rc = std::fclose(f);
  if (w != text.size() || rc != 0) throw IoError("write failed (disk full?)", nbb_log_path_);
  pending_nbb_.clear();
}

bool ImgDbWriter::Contains(std::string_view key) const { return db_->Contains(key); }

void ImgDbWriter::Put(std::string_view key, const std::vector<Array>& arrays) {
  PreparedRecord p;
  try {
    p = PrepareImgRecord(arrays, options_);
  } catch (const FormatError& e) {
    throw FormatError(e.message(), db_path_ + "[" + std::string(key) + "]");
  }
  PutEncoded(key, EncodeImgRecord(p.arrays, options_.codec, options_), p.nbb);
}

void ImgDbWriter::PutEncoded(std::string_view key, std::string value, int nbb) {
  if (closed_) throw UsageError("img_db writer used after Close()", db_path_);
  if (key == kKeysKey) throw UsageError("'__keys__' is reserved", db_path_);
  if (!IsValidUtf8(key)) {
    // UNITER looks records up by fname.encode('utf-8'): such a key could never be read.
    std::string shown;
    AppendPyJsonString(&shown, key);
    throw FormatError("key is not valid UTF-8 (UNITER reads records by their UTF-8 file name)",
                      db_path_ + "[" + shown + "]");
  }
  if (!nbb_log_path_.empty()) pending_nbb_.emplace_back(std::string(key), nbb);
  nbb_[std::string(key)] = nbb;
  db_->Put(key, std::move(value));
}

void ImgDbWriter::Commit() { db_->Commit(); }

void ImgDbWriter::Close() {
  if (closed_) return;
  db_->Commit();
  std::vector<std::string> keys;
  {
    LmdbReadTxn txn(db_->env());
    txn.ForEach([&](std::string_view k, std::string_view) {
      if (k != kKeysKey) keys.emplace_back(k);
      return true;
    });
  }
  db_->Put(kKeysKey, PyJsonList(keys));
  db_->Close();
  closed_ = true;
  if (!nbb_log_path_.empty()) {
    std::vector<std::pair<std::string, int64_t>> items;
    items.reserve(keys.size());
    for (const std::string& k : keys) {
      auto it = nbb_.find(k);
      if (it == nbb_.end()) throw Error("no nbb known for record '" + k + "' (its log was lost); rerun with --force", db_path_);
      items.emplace_back(k, it->second);
    }
    const std::string path = dir_ + "/" + NbbJsonName(options_);
    WriteFileAtomic(path, PyJsonIntMap(items));
    std::error_code ec;
    fs::remove(nbb_log_path_, ec);
  }
}

// ---------------------------------------------------------------- readers

ImgDbReader::ImgDbReader(const std::string& db_path) : path_(db_path), db_(std::make_unique<LmdbReader>(db_path)) {}
ImgDbReader::~ImgDbReader() = default;

std::optional<std::string> ImgDbReader::GetRaw(std::string_view key) const { return db_->Get(key); }

std::optional<std::vector<Array>> ImgDbReader::Get(std::string_view key, const std::vector<std::string>& only) const {
  LmdbReadTxn txn(db_->env());
  auto v = txn.Get(key);
  if (!v) return std::nullopt;
  try {
    return DecodeImgRecord(*v, only);
  } catch (const FormatError& e) {
    throw FormatError(e.message(), path_ + "[" + std::string(key) + "]");
  }
}

std::vector<std::string> ImgDbReader::Keys() const {
  std::vector<std::string> keys;
  db_->ForEach([&](std::string_view k, std::string_view) {
    if (k != kKeysKey) keys.emplace_back(k);
    return true;
  });
  return keys;
}

std::optional<std::vector<std::string>> ImgDbReader::StoredKeys() const {
  auto raw = db_->Get(kKeysKey);
  if (!raw) return std::nullopt;
  try {
    return nlohmann::json::parse(*raw).get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("'__keys__' is not a JSON list of strings: ") + e.what(), path_);
  }
}

size_t ImgDbReader::size() const {
  const size_t n = db_->Count();
  return db_->Contains(kKeysKey) ? n - 1 : n;
}

Codec ImgDbReader::codec() const {
  std::optional<Codec> c;
  db_->ForEach([&](std::string_view k, std::string_view v) {
    if (k == kKeysKey) return true;
    c = DetectCodec(v);
    return false;
  });
  return c.value_or(Codec::kMsgpack);
}

DetectFeatDb::DetectFeatDb(const std::string& img_dir, const ImgDbOptions& options)
    : options_(options), db_(std::make_unique<ImgDbReader>(img_dir + "/" + ImgDbName(options))) {
  const std::string json = NbbJsonName(options);
  if (!json.empty()) {
    const nlohmann::json j = ReadJsonFile(img_dir + "/" + json);
    if (j.is_null()) throw FormatError("missing nbb sidecar " + json + " (UNITER needs it too)", img_dir);
    try {
      for (auto it = j.begin(); it != j.end(); ++it) name2nbb_[it.key()] = it.value().get<int>();
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(std::string("bad nbb sidecar: ") + e.what(), img_dir + "/" + json);
    }
  }
}

int DetectFeatDb::nbb(const std::string& fname) const {
  if (options_.keep_all) return std::numeric_limits<int>::max();
  if (options_.conf_th < 0) return options_.num_bb;
  auto it = name2nbb_.find(fname);
  if (it == name2nbb_.end()) throw FormatError("image '" + fname + "' is not in the nbb sidecar", db_->path());
  return it->second;
}

std::vector<Array> DetectFeatDb::GetDump(const std::string& fname) const {
  auto arrays = db_->Get(fname);
  if (!arrays) throw FormatError("image '" + fname + "' is not in the img_db", db_->path());
  const int n = nbb(fname);
  std::vector<Array> out;
  for (Array& a : *arrays) {
    Array t = a.shape.empty() ? std::move(a) : TruncateRows(a, n);
    if (t.dtype == DType::kFloat16) {
      std::vector<float> f = t.ToFloat32();
      t = Array::FromFloat32(t.name, t.shape, f);
    }
    out.push_back(std::move(t));
  }
  return out;
}

DetectFeatDb::Feat DetectFeatDb::Get(const std::string& fname) const {
  auto arrays = db_->Get(fname, {"features", "norm_bb"});
  if (!arrays) throw FormatError("image '" + fname + "' is not in the img_db", db_->path());
  const Array* f = FindArray(*arrays, "features");
  const Array* b = FindArray(*arrays, "norm_bb");
  if (!f || !b || f->shape.size() != 2 || b->shape.size() != 2)
    throw FormatError("image '" + fname + "' lacks 2-d features/norm_bb", db_->path());
  const int n = nbb(fname);
  Feat out;
  const Array ft = TruncateRows(*f, n), bt = TruncateRows(*b, n);
  out.nbb = static_cast<int>(ft.shape[0]);
  out.feat_dim = static_cast<int>(ft.shape[1]);
  out.features = ft.ToFloat32();
  out.norm_bb = bt.ToFloat32();
  return out;
}

}  // namespace uniter::featdb

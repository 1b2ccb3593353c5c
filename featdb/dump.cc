#include "featdb/dump.h"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <sstream>

#include "common/error.h"
#include "featdb/codecs.h"
#include "featdb/db_tools.h"
#include "featdb/img_db.h"
#include "featdb/lmdb_env.h"
#include "featdb/txt_db.h"
#include "featdb/value.h"

namespace fs = std::filesystem;

namespace uniter::featdb {
namespace {

// Like json.dump(2), but a list of scalars stays on one line: a record's
// 60 input_ids read as one row, not 60 lines.
void WriteReadable(const nlohmann::json& j, int indent, std::ostream& out) {
  const auto scalar = [](const nlohmann::json& v) { return !v.is_object() && !v.is_array(); };
  const std::string pad(indent + 2, ' ');
  if (j.is_array() && !j.empty() && !std::all_of(j.begin(), j.end(), scalar)) {
    out << "[\n";
    for (size_t i = 0; i < j.size(); ++i) {
      out << pad;
      WriteReadable(j[i], indent + 2, out);
      out << (i + 1 < j.size() ? ",\n" : "\n");
    }
    out << std::string(indent, ' ') << "]";
  } else if (j.is_object() && !j.empty()) {
    out << "{\n";
    size_t i = 0;
    for (auto it = j.begin(); it != j.end(); ++it, ++i) {
      out << pad << nlohmann::json(it.key()).dump() << ": ";
      WriteReadable(it.value(), indent + 2, out);
      out << (i + 1 < j.size() ? ",\n" : "\n");
    }
    out << std::string(indent, ' ') << "}";
  } else {
    out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
}

std::vector<std::string> LoadVocab(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError("cannot open vocab", path);
  std::vector<std::string> v;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    v.push_back(line);
  }
  return v;
}

nlohmann::json ToJson(const Value& v) {
  switch (v.type()) {
    case Value::Type::kNil: return nullptr;
    case Value::Type::kBool: return v.as_bool();
    case Value::Type::kInt: return v.is_unsigned() ? nlohmann::json(v.as_uint()) : nlohmann::json(v.as_int());
    case Value::Type::kFloat: return v.as_double();
    case Value::Type::kStr: return v.as_str();
    case Value::Type::kBin: {
      static const char* kHex = "0123456789abcdef";
      std::string hex;
      const std::string& b = v.as_bin();
      for (size_t i = 0; i < std::min<size_t>(b.size(), 64); ++i) {
        hex.push_back(kHex[static_cast<uint8_t>(b[i]) >> 4]);
        hex.push_back(kHex[static_cast<uint8_t>(b[i]) & 15]);
      }
      return {{"bin_bytes", b.size()}, {"hex", hex + (b.size() > 64 ? "..." : "")}};
    }
    case Value::Type::kArray: {
      nlohmann::json a = nlohmann::json::array();
      for (const Value& x : v.as_array()) a.push_back(ToJson(x));
      return a;
    }
    case Value::Type::kMap: {
      nlohmann::json m = nlohmann::json::object();
      for (const auto& [k, x] : v.as_map()) m[k] = ToJson(x);
      return m;
    }
  }
  return nullptr;
}

// input_ids* fields (lists of ints, or lists of them) → tokens.
void AddTokens(const Value& ex, const std::vector<std::string>& vocab, nlohmann::json& out) {
  if (ex.type() != Value::Type::kMap) return;
  auto tok = [&](const Value& ids) {
    std::vector<std::string> t;
    for (const Value& id : ids.as_array()) {
      const int64_t i = id.type() == Value::Type::kInt ? id.as_int() : -1;
      if (i >= 0 && static_cast<size_t>(i) < vocab.size()) {
        t.push_back(vocab[i]);
      } else {
        std::string unknown = "<";  // built stepwise: GCC 12 warns (-Wrestrict) on "<" + s + ">"
        unknown += std::to_string(i);
        unknown += '>';
        t.push_back(std::move(unknown));
      }
    }
    return t;
  };
  for (const auto& [k, v] : ex.as_map()) {
    if (k.rfind("input_ids", 0) != 0 || v.type() != Value::Type::kArray) continue;
    const auto& a = v.as_array();
    if (!a.empty() && a[0].type() == Value::Type::kArray) {
      nlohmann::json lists = nlohmann::json::array();
      for (const Value& x : a)
        if (x.type() == Value::Type::kArray) lists.push_back(tok(x));
      out["tokens" + k.substr(9)] = lists;
    } else {
      out["tokens" + k.substr(9)] = tok(v);
    }
  }
}

nlohmann::json ArrayJson(const Array& a, int rows, int cols) {
  nlohmann::json j;
  j["name"] = a.name;
  j["dtype"] = DTypeName(a.dtype);
  j["shape"] = a.shape;
  const std::vector<float> f = a.ToFloat32();
  if (!f.empty()) {
    double mn = f[0], mx = f[0], sum = 0;
    for (float x : f) {
      mn = std::min<double>(mn, x);
      mx = std::max<double>(mx, x);
      sum += x;
    }
    j["min"] = mn;
    j["max"] = mx;
    j["mean"] = sum / static_cast<double>(f.size());
  }
  const int64_t width = a.shape.size() >= 2 ? a.NumElements() / std::max<int64_t>(a.shape[0], 1) : 1;
  nlohmann::json head = nlohmann::json::array();
  const int64_t nrows = a.shape.empty() ? 1 : std::min<int64_t>(a.shape[0], rows);
  for (int64_t r = 0; r < nrows; ++r) {
    nlohmann::json row = nlohmann::json::array();
    for (int64_t c = 0; c < std::min<int64_t>(width, cols); ++c) row.push_back(f[r * width + c]);
    head.push_back(a.shape.size() >= 2 ? row : row[0]);
  }
  j["head"] = head;
  return j;
}

void PrintArrayText(const nlohmann::json& j, std::ostream& out) {
  out << "  " << j["name"].get<std::string>() << ": " << j["dtype"].get<std::string>() << " " << j["shape"].dump();
  if (j.contains("min"))
    out << std::setprecision(5) << "  min " << j["min"].get<double>() << "  max " << j["max"].get<double>() << "  mean "
        << j["mean"].get<double>();
  out << "\n";
  for (const auto& row : j["head"]) out << "    " << row.dump() << "\n";
}

std::string Histogram(const std::map<int64_t, uint64_t>& h) {
  std::ostringstream s;
  for (const auto& [b, n] : h) s << "    " << std::setw(6) << b << ".." << std::setw(6) << b + 9 << ": " << n << "\n";
  return s.str();
}

}  // namespace

void Dump(const DumpOptions& o, std::ostream& out) {
  if (!IsLmdbDir(o.db) && fs::is_directory(o.db)) {
    // An img_db split folder holds the dbs one level down: name them.
    std::vector<std::string> dbs;
    for (const auto& e : fs::directory_iterator(o.db))
      if (e.is_directory() && IsLmdbDir(e.path().string())) dbs.push_back(e.path().filename().string());
    std::sort(dbs.begin(), dbs.end());
    if (!dbs.empty()) {
      std::string list;
      for (const auto& d : dbs) list += (list.empty() ? "" : ", ") + d;
      throw UsageError("not an LMDB database but a folder of them; pass one of: " + list, o.db);
    }
  }
  const DbKind kind = DetectDbKind(o.db);
  LmdbReader db(o.db);
  const char* kind_name = kind == DbKind::kTxt ? "txt_db" : "img_db";
  if (o.stats) {
    uint64_t count = 0, value_bytes = 0;
    std::map<int64_t, uint64_t> hist;
    std::map<std::string, uint64_t> codecs;
    std::map<std::string, int> nbb;
    if (kind == DbKind::kImg) {
      if (auto opts = ParseImgDbName(fs::path(o.db).filename().string()); opts && !NbbJsonName(*opts).empty()) {
        const nlohmann::json j = ReadJsonFile(fs::path(o.db).parent_path().string() + "/" + NbbJsonName(*opts));
        if (j.is_object())
          for (auto it = j.begin(); it != j.end(); ++it)
            if (it.value().is_number_integer()) nbb[it.key()] = it.value().get<int>();
      }
    }
    db.ForEach([&](std::string_view k, std::string_view v) {
      if (k == "__keys__") return true;
      ++count;
      value_bytes += v.size();
      int64_t len = -1;
      try {
        if (kind == DbKind::kTxt) {
          const Value ex = DecodeMsgpack(Lz4FrameDecompress(v));
          if (const Value* ids = ex.Find("input_ids"); ids && ids->type() == Value::Type::kArray) len = ids->as_array().size();
        } else {
          codecs[CodecName(DetectCodec(v))]++;
          auto it = nbb.find(std::string(k));
          if (it != nbb.end()) {
            len = it->second;
          } else {
            auto arrays = DecodeImgRecord(v, {"features"});
            if (!arrays.empty()) len = arrays[0].Rows();
          }
        }
      } catch (const Error&) {
        codecs["corrupt"]++;
      }
      if (len >= 0) hist[len / 10 * 10]++;
      return true;
    });
    struct stat st{};
    ::stat((o.db + "/data.mdb").c_str(), &st);
    MDB_envinfo info;
    MDB_stat est;
    mdb_env_info(db.env().env(), &info);
    mdb_env_stat(db.env().env(), &est);
    const uint64_t used = (info.me_last_pgno + 1) * static_cast<uint64_t>(est.ms_psize);
    const uint64_t alloc = static_cast<uint64_t>(st.st_blocks) * 512;
    if (o.json) {
      nlohmann::json j;
      j["db"] = o.db;
      j["kind"] = kind_name;
      j["count"] = count;
      j["value_bytes"] = value_bytes;
      j["file_bytes"] = static_cast<uint64_t>(st.st_size);
      j["used_bytes"] = used;
      j["allocated_bytes"] = alloc;
      j["codecs"] = codecs;
      nlohmann::json h = nlohmann::json::object();
      for (const auto& [b, n] : hist) h[std::to_string(b)] = n;
      j[kind == DbKind::kTxt ? "length_histogram" : "nbb_histogram"] = h;
      out << j.dump(2) << "\n";
    } else {
      out << o.db << ": " << kind_name << "\n  records: " << count << "\n  value bytes: " << value_bytes
          << "\n  bytes on disk: " << used << " used, " << alloc << " allocated (data.mdb " << st.st_size << ")\n";
      if (kind == DbKind::kImg) {
        out << "  codec:";
        for (const auto& [c, n] : codecs) out << " " << c << " (" << n << ")";
        out << "\n";
      }
      out << (kind == DbKind::kTxt ? "  input_ids length histogram:\n" : "  nbb histogram:\n") << Histogram(hist);
    }
    return;
  }
  if (o.keys.empty()) {
    std::vector<std::string> keys;
    db.ForEach([&](std::string_view k, std::string_view) {
      if (k != "__keys__") keys.emplace_back(k);
      return o.limit == 0 || keys.size() < o.limit;
    });
    if (o.json) {
      out << nlohmann::json({{"db", o.db}, {"kind", kind_name}, {"keys", keys}}).dump() << "\n";
    } else {
      for (const auto& k : keys) out << k << "\n";
    }
    return;
  }
  std::vector<std::string> vocab;
  if (!o.vocab.empty()) vocab = LoadVocab(o.vocab);
  nlohmann::json all = nlohmann::json::array();
  for (const std::string& key : o.keys) {
    auto raw = db.Get(key);
    if (!raw) throw FormatError("no record '" + key + "'", o.db);
    nlohmann::json rec;
    rec["key"] = key;
    try {
      if (kind == DbKind::kTxt) {
        const Value ex = DecodeMsgpack(Lz4FrameDecompress(*raw));
        rec["value"] = ToJson(ex);
        if (!vocab.empty()) AddTokens(ex, vocab, rec);
      } else {
        const Codec c = DetectCodec(*raw);
        rec["codec"] = CodecName(c);
        if (c == Codec::kNative) rec["payloads"] = DescribeNative(*raw);
        rec["bytes"] = raw->size();
        nlohmann::json arrays = nlohmann::json::array();
        for (const Array& a : DecodeImgRecord(*raw)) arrays.push_back(ArrayJson(a, o.rows, o.cols));
        rec["arrays"] = arrays;
      }
    } catch (const FormatError& e) {
      throw FormatError(e.message(), o.db + "[" + key + "]");
    }
    if (o.json) {
      all.push_back(rec);
    } else if (kind == DbKind::kTxt) {
      out << "== " << key << "\n";
      WriteReadable(rec["value"], 0, out);
      out << "\n";
      for (auto it = rec.begin(); it != rec.end(); ++it)
        if (it.key().rfind("tokens", 0) == 0) out << it.key() << ": " << it.value().dump() << "\n";
    } else {
      out << "== " << key << " (" << rec["codec"].get<std::string>() << ", " << rec["bytes"].get<size_t>() << " bytes)\n";
      for (const auto& a : rec["arrays"]) PrintArrayText(a, out);
    }
  }
  if (o.json) out << (all.size() == 1 ? all[0] : all).dump(2) << "\n";
}

}  // namespace uniter::featdb

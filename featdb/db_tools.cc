#include "featdb/db_tools.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <unordered_map>

#include "common/error.h"
#include "common/progress.h"
#include "featdb/codecs.h"
#include "featdb/lmdb_env.h"
#include "featdb/txt_db.h"
#include "featdb/value.h"

namespace fs = std::filesystem;

namespace uniter::featdb {
namespace {

bool IsLz4Frame(std::string_view v) { return v.size() >= 4 && v.substr(0, 4) == std::string_view("\x04\x22\x4d\x18", 4); }

std::string DbName(const std::string& db_path) {
  std::string p = db_path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return fs::path(p).filename().string();
}
std::string SplitDir(const std::string& db_path) {
  std::string p = db_path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return fs::path(p).parent_path().string();
}

ImgDbOptions ImgOptionsOf(const std::string& db_path) {
  auto o = ParseImgDbName(DbName(db_path));
  if (!o) throw UsageError("'" + DbName(db_path) + "' is not an img_db name (feat_th*_max*_min*, feat_numbb*, all)", db_path);
  return *o;
}

// The nbb json of an img_db (empty map when its options write none).
std::map<std::string, int> LoadNbb(const std::string& db_path, const ImgDbOptions& o) {
  std::map<std::string, int> out;
  const std::string name = NbbJsonName(o);
  if (name.empty()) return out;
  const std::string path = SplitDir(db_path) + "/" + name;
  const nlohmann::json j = ReadJsonFile(path);
  if (j.is_null()) throw FormatError("missing nbb sidecar " + name, SplitDir(db_path));
  try {
    for (auto it = j.begin(); it != j.end(); ++it) out[it.key()] = it.value().get<int>();
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("bad nbb sidecar: ") + e.what(), path);
  }
  return out;
}

int NbbFor(const std::map<std::string, int>& nbb, const std::string& key, std::string_view value, const ImgDbOptions& o,
           const std::string& where) {
  if (!NbbJsonName(o).empty()) {
    auto it = nbb.find(key);
    if (it == nbb.end()) throw FormatError("record '" + key + "' is missing from the nbb sidecar", where);
    return it->second;
  }
  return 0;  // no json is written for these options
}

}  // namespace

DbKind DetectDbKind(const std::string& db_path) {
  LmdbReader r(db_path);
  std::optional<DbKind> kind;
  r.ForEach([&](std::string_view k, std::string_view v) {
    if (k == "__keys__") return true;
    kind = IsLz4Frame(v) ? DbKind::kTxt : DbKind::kImg;
    return false;
  });
  if (kind) return *kind;
  return ParseImgDbName(DbName(db_path)) ? DbKind::kImg : DbKind::kTxt;
}

ConvertResult Convert(const ConvertOptions& o) {
  ImgDbOptions opts = ImgOptionsOf(o.src_db);
  ImgDbReader src(o.src_db);
  const auto nbb = LoadNbb(o.src_db, opts);
  opts.codec = o.codec;
  opts.native_compression = o.native_compression;
  opts.resume = o.resume;
  opts.force = o.force;
  ImgDbWriter dst(o.dst_dir, opts);
  if (fs::weakly_canonical(dst.db_path()) == fs::weakly_canonical(o.src_db))
    throw UsageError("source and destination are the same db; pick another codec or folder", o.src_db);
  ConvertResult r;
  r.dst_db = dst.db_path();
  const std::vector<std::string> keys = src.Keys();
  Progress progress("convert", keys.size(), o.quiet);
  for (const std::string& k : keys) {
    progress.Add();
    if (o.resume && dst.Contains(k)) continue;
    const auto raw = src.GetRaw(k);
    std::vector<Array> arrays;
    try {
      arrays = DecodeImgRecord(*raw);
    } catch (const FormatError& e) {
      throw FormatError(e.message(), o.src_db + "[" + k + "]");
    }
    // UNITER's npz writer stores a stray 0-d `allow_pickle`; it is no feature.
    std::erase_if(arrays, [](const Array& a) { return a.name == "allow_pickle" && a.shape.empty(); });
    std::string value = EncodeImgRecord(arrays, o.codec, opts);
    r.src_bytes += raw->size();
    r.dst_bytes += value.size();
    dst.PutEncoded(k, std::move(value), NbbFor(nbb, k, *raw, opts, o.src_db));
    ++r.records;
  }
  dst.Close();
  progress.Finish();
  return r;
}

MergeResult Merge(const MergeOptions& o) {
  if (o.shards.empty()) throw UsageError("merge needs at least one shard");
  MergeResult r;
  const DbKind kind = DetectDbKind(o.shards[0]);
  std::unordered_map<std::string, uint32_t> seen;  // key → crc of the value this run wrote
  auto check_dup = [&](const std::string& k, std::string_view v, const std::string& shard) {
    auto it = seen.find(k);
    if (it == seen.end()) {
      seen.emplace(k, Crc32c(v));
      return false;
    }
    if (it->second != Crc32c(v)) throw FormatError("record '" + k + "' differs between shards", shard);
    ++r.duplicates;
    return true;
  };
  Progress progress("merge", 0, o.quiet);
  if (kind == DbKind::kImg) {
    ImgDbOptions opts = ImgOptionsOf(o.shards[0]);
    for (const auto& s : o.shards)
      if (DbName(s) != DbName(o.shards[0]))
        throw UsageError("shards must have the same db name (" + DbName(o.shards[0]) + " vs " + DbName(s) + ")", s);
    opts.resume = o.resume;
    opts.force = o.force;
    opts.codec = Codec::kMsgpack;  // only names the db; values are copied as they are
    auto parsed = ParseImgDbName(DbName(o.shards[0]));
    opts.codec = parsed->codec;
    ImgDbWriter w(o.out, opts);
    r.out_db = w.db_path();
    for (const auto& s : o.shards) {
      ImgDbReader src(s);
      const auto nbb = LoadNbb(s, opts);
      for (const std::string& k : src.Keys()) {
        progress.Add();
        if (o.resume && !seen.count(k) && w.Contains(k)) continue;
        auto v = src.GetRaw(k);
        if (check_dup(k, *v, s)) continue;
        w.PutEncoded(k, std::move(*v), NbbFor(nbb, k, {}, opts, s));
        ++r.records;
      }
    }
    w.Close();
  } else {
    TxtDbWriterOptions wo;
    wo.resume = o.resume;
    wo.force = o.force;
    TxtDbWriter w(o.out, wo);
    r.out_db = o.out;
    nlohmann::json id2len = nlohmann::json::object(), txt2img = nlohmann::json::object(),
                   img2txts = nlohmann::json::object(), meta;
    bool any_txt2img = false, any_img2txts = false;
    for (const auto& s : o.shards) {
      LmdbReader raw(s);
      auto read_json = [&](const char* name) { return ReadJsonFile(s + "/" + name); };
      raw.ForEach([&](std::string_view k, std::string_view v) {
        progress.Add();
        const std::string key(k);
        if (o.resume && !seen.count(key) && w.Contains(key)) return true;
        if (check_dup(key, v, s)) return true;
        w.PutRaw(key, std::string(v));
        ++r.records;
        return true;
      });
      const nlohmann::json m = read_json("meta.json");
      if (meta.is_null()) meta = m;
      else if (!m.is_null())
        for (const char* f : {"CLS", "SEP", "MASK", "UNK", "v_range"})
          if (m.value(f, nlohmann::json()) != meta.value(f, nlohmann::json()))
            throw FormatError(std::string("meta.json differs in '") + f + "' between shards", s);
      const nlohmann::json il = read_json("id2len.json");
      if (il.is_object()) id2len.update(il);
      const nlohmann::json ti = read_json("txt2img.json");
      if (ti.is_object()) txt2img.update(ti), any_txt2img = true;
      const nlohmann::json it = read_json("img2txts.json");
      if (it.is_object()) {
        any_img2txts = true;
        for (auto e = it.begin(); e != it.end(); ++e) {
          nlohmann::json& dst = img2txts[e.key()];
          if (dst.is_null()) dst = nlohmann::json::array();
          for (const auto& t : e.value())
            if (std::find(dst.begin(), dst.end(), t) == dst.end()) dst.push_back(t);
        }
      }
    }
    if (!meta.is_null()) w.WriteJson("meta.json", meta);
    w.WriteJson("id2len.json", id2len);
    if (any_txt2img) w.WriteJson("txt2img.json", txt2img);
    if (any_img2txts) w.WriteJson("img2txts.json", img2txts);
    w.Close();
  }
  progress.Finish();
  return r;
}

VerifyResult Verify(const std::string& db_path, size_t max_problems) {
  VerifyResult r;
  r.kind = DetectDbKind(db_path);
  auto problem = [&](const std::string& p) {
    if (r.problems.size() < max_problems) r.problems.push_back(p);
    else if (r.problems.size() == max_problems) r.problems.push_back("... (more problems not listed)");
  };
  LmdbReader raw(db_path);
  std::set<std::string> keys;
  if (r.kind == DbKind::kImg) {
    std::optional<std::string> stored_keys;
    raw.ForEach([&](std::string_view k, std::string_view v) {
      if (k == "__keys__") {
        stored_keys = std::string(v);
        return true;
      }
      keys.emplace(k);
      ++r.records;
      try {
        DecodeImgRecord(v);
      } catch (const Error& e) {
        problem("record '" + std::string(k) + "': " + e.message());
      }
      return true;
    });
    if (!stored_keys) {
      problem("no __keys__ record (an unfinished write? run the writer again with --resume)");
    } else {
      try {
        const auto list = nlohmann::json::parse(*stored_keys).get<std::vector<std::string>>();
        const std::set<std::string> s(list.begin(), list.end());
        if (s.size() != list.size()) problem("__keys__ lists a key twice");
        if (s != keys) problem("__keys__ lists " + std::to_string(s.size()) + " keys, the db holds " + std::to_string(keys.size()));
      } catch (const nlohmann::json::exception& e) {
        problem(std::string("__keys__ is not a JSON list of strings: ") + e.what());
      }
    }
    if (auto opts = ParseImgDbName(DbName(db_path)); opts && !NbbJsonName(*opts).empty()) {
      try {
        const auto nbb = LoadNbb(db_path, *opts);
        std::set<std::string> nk;
        for (const auto& [k, n] : nbb) {
          nk.insert(k);
          // UNITER keeps the first nbb rows; fewer stored rows (small images) is normal.
          if (n <= 0) problem("nbb of '" + k + "' is " + std::to_string(n));
        }
        if (nk != keys)
          problem("the nbb sidecar lists " + std::to_string(nk.size()) + " images, the db holds " + std::to_string(keys.size()));
      } catch (const Error& e) {
        problem(e.what());
      }
    }
  } else {
    std::map<std::string, size_t> lens;
    raw.ForEach([&](std::string_view k, std::string_view v) {
      keys.emplace(k);
      ++r.records;
      try {
        const Value ex = DecodeMsgpack(Lz4FrameDecompress(v));
        if (const Value* ids = ex.Find("input_ids"); ids && ids->type() == Value::Type::kArray)
          lens[std::string(k)] = ids->as_array().size();
      } catch (const Error& e) {
        problem("record '" + std::string(k) + "': " + e.message());
      }
      return true;
    });
    try {
      const nlohmann::json meta = ReadJsonFile(db_path + "/meta.json");
      if (meta.is_null()) problem("missing meta.json");
      else
        for (const char* f : {"CLS", "SEP", "MASK", "v_range"})
          if (!meta.contains(f)) problem(std::string("meta.json lacks '") + f + "'");
      const nlohmann::json id2len = ReadJsonFile(db_path + "/id2len.json");
      if (id2len.is_null()) problem("missing id2len.json");
      else
        for (auto it = id2len.begin(); it != id2len.end(); ++it) {
          if (!keys.count(it.key())) {
            problem("id2len.json names '" + it.key() + "', which the db lacks");
            continue;
          }
          auto l = lens.find(it.key());
          if (l != lens.end() && (!it.value().is_number_integer() || it.value().get<int64_t>() != static_cast<int64_t>(l->second)))
            problem("id2len of '" + it.key() + "' is " + it.value().dump() + ", input_ids has " + std::to_string(l->second));
        }
      const nlohmann::json txt2img = ReadJsonFile(db_path + "/txt2img.json");
      if (txt2img.is_object())
        for (auto it = txt2img.begin(); it != txt2img.end(); ++it)
          if (!keys.count(it.key())) problem("txt2img.json names '" + it.key() + "', which the db lacks");
    } catch (const Error& e) {
      problem(e.what());
    }
  }
  return r;
}

}  // namespace uniter::featdb

// results.bin as inf_itm.py pickles it (see trainer/itm_eval.h).
#include <c10/util/Half.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/pickle_reader.h"
#include "trainer/data/datasets.h"
#include "trainer/train.h"
#include "trainer/internal/pickle_writer.h"
#include "trainer/itm_eval.h"

namespace uniter::trainer {
namespace {

constexpr unsigned char kLegacyMagicNumber[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

// torch.save(storage, f, _use_new_zipfile_serialization=False) of one
// HalfStorage: magic, protocol 1001, sys_info, the storage's persistent id,
// the key list, then its element count and bytes.
std::string LegacyHalfStorage(const std::vector<uint16_t>& values) {
  PickleWriter w;
  w.Proto();
  w.Op('\x8a');  // LONG1: the 10-byte magic number
  w.Op(static_cast<char>(sizeof kLegacyMagicNumber));
  w.Raw(std::string_view(reinterpret_cast<const char*>(kLegacyMagicNumber), sizeof kLegacyMagicNumber));
  w.Op('.');
  w.Proto();
  w.Int(1001);
  w.Op('.');
  w.Proto();
  w.Op('}');
  w.Op('(');
  w.Str("protocol_version");
  w.Int(1001);
  w.Str("little_endian");
  w.Op('\x88');
  w.Str("type_sizes");
  w.Op('}');
  w.Op('(');
  w.Str("short");
  w.Int(2);
  w.Str("int");
  w.Int(4);
  w.Str("long");
  w.Int(4);
  w.Op('u');
  w.Op('u');
  w.Op('.');
  w.Proto();
  w.Op('(');  // persistent id ('storage', HalfStorage, key, location, numel, view_metadata)
  w.Str("storage");
  w.Global("torch", "HalfStorage");
  w.Str("0");
  w.Str("cpu");
  w.Int(static_cast<int64_t>(values.size()));
  w.Op('N');
  w.Op('t');
  w.Op('Q');
  w.Op('.');
  w.Proto();
  w.Op(']');
  w.Str("0");
  w.Op('a');
  w.Op('.');
  w.Int64Le(static_cast<int64_t>(values.size()));
  w.Raw(std::string_view(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(uint16_t)));
  return w.Take();
}

void StrList(PickleWriter& w, const std::vector<std::string>& items) {
  w.Op(']');
  w.Op('(');
  for (const std::string& s : items) w.Str(s);
  w.Op('e');
}

}  // namespace

std::string ItmResultsPickle(const std::vector<uint16_t>& half_scores, const std::vector<std::string>& txt_ids,
                             const std::vector<std::string>& img_ids) {
  const int64_t nt = static_cast<int64_t>(txt_ids.size()), ni = static_cast<int64_t>(img_ids.size());
  if (static_cast<int64_t>(half_scores.size()) != nt * ni) throw UsageError("ItmResultsPickle: matrix size mismatch");
  const std::string storage = LegacyHalfStorage(half_scores);
  if (storage.size() > 0xFFFFFFFFull) throw UsageError("results.bin: score matrix over 4 GiB");
  PickleWriter w;
  w.Proto(3);
  w.Global("torch._utils", "_rebuild_tensor_v2");
  w.Op('(');
  w.Global("torch.storage", "_load_from_bytes");
  w.Op('(');
  w.Bytes(storage);
  w.Op('t');
  w.Op('R');
  w.Int(0);
  w.IntTuple(std::vector<int64_t>{nt, ni});
  w.IntTuple(std::vector<int64_t>{ni, 1});
  w.Op('\x89');
  w.Global("collections", "OrderedDict");
  w.Op(')');
  w.Op('R');
  w.Op('t');
  w.Op('R');
  StrList(w, txt_ids);
  StrList(w, img_ids);
  w.Op('\x87');
  w.Op('.');
  return w.Take();
}

namespace {

struct ItmResults {
  std::vector<float> scores;
  std::vector<std::string> txt_ids, img_ids;
};

std::vector<std::string> Strings(const PyValue& v, const std::string& what, const std::string& where) {
  if (!v.is_seq()) throw FormatError(what + " is not a list", where);
  std::vector<std::string> out;
  for (const PyValue& s : v.items) {
    if (!s.is_str()) throw FormatError(what + " holds a non-string", where);
    out.push_back(s.s);
  }
  return out;
}

// The storage _load_from_bytes rebuilds: a legacy torch.save of one Half or
// Float storage. Returns its values widened to float.
std::vector<float> LegacyStorage(const std::string& bytes, const std::string& where) {
  constexpr size_t kHead = 4 + sizeof kLegacyMagicNumber + 1;  // \x80\x02 \x8a\x0a <magic> .
  if (bytes.size() < kHead || std::memcmp(bytes.data() + 4, kLegacyMagicNumber, sizeof kLegacyMagicNumber) != 0)
    throw FormatError("the score tensor's storage is not a legacy torch.save", where);
  PickleLimits plain, pid;
  pid.allow_persistent_ids = true;
  pid.allowed_globals = {"torch.HalfStorage", "torch.FloatStorage"};
  size_t pos = kHead;
  ParsePickleAt(bytes, pos, where, plain, &pos);  // protocol 1001
  ParsePickleAt(bytes, pos, where, plain, &pos);  // sys_info
  const PyValue obj = ParsePickleAt(bytes, pos, where, pid, &pos);
  ParsePickleAt(bytes, pos, where, plain, &pos);  // storage keys
  if (obj.kind != PyValue::Kind::kPersistentId || obj.items.empty() || !obj.items[0].is_seq() ||
      obj.items[0].items.size() < 5 || obj.items[0].items[1].kind != PyValue::Kind::kGlobal)
    throw FormatError("the score storage has no storage reference", where);
  const bool half = obj.items[0].items[1].s == "torch.HalfStorage";
  int64_t count = 0;
  if (bytes.size() - pos < 8) throw FormatError("the score storage is truncated", where);
  std::memcpy(&count, bytes.data() + pos, 8);
  pos += 8;
  const size_t width = half ? 2 : 4;
  if (count < 0 || static_cast<uint64_t>(count) != (bytes.size() - pos) / width)
    throw FormatError("the score storage's size does not match its bytes", where);
  std::vector<float> out(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    if (half) {
      c10::Half h;
      std::memcpy(&h.x, bytes.data() + pos + 2 * i, 2);
      out[i] = static_cast<float>(h);
    } else {
      std::memcpy(&out[i], bytes.data() + pos + 4 * i, 4);
    }
  }
  return out;
}

ItmResults ReadItmResults(const std::string& path) {
  PickleLimits limits;
  limits.allowed_globals = {"torch._utils._rebuild_tensor_v2", "torch.storage._load_from_bytes",
                            "collections.OrderedDict"};
  const PyValue top = ReadPickleFile(path, limits);
  if (top.kind != PyValue::Kind::kTuple || top.items.size() != 3)
    throw FormatError("not inf_itm's results.bin (a (scores, txt_ids, img_ids) tuple)", path);
  ItmResults r;
  r.txt_ids = Strings(top.items[1], "txt_ids", path);
  r.img_ids = Strings(top.items[2], "img_ids", path);
  const PyValue& t = top.items[0];
  if (t.kind != PyValue::Kind::kObject || t.s != "torch._utils._rebuild_tensor_v2" || t.items.size() < 4 ||
      t.items[0].kind != PyValue::Kind::kObject || t.items[0].items.size() != 1 ||
      t.items[0].items[0].kind != PyValue::Kind::kBytes)
    throw FormatError("scores are not a pickled torch tensor", path);
  const int64_t nt = static_cast<int64_t>(r.txt_ids.size()), ni = static_cast<int64_t>(r.img_ids.size());
  const PyValue &offset = t.items[1], &size = t.items[2], &stride = t.items[3];
  if (!offset.is_int() || offset.i != 0 || !size.is_seq() || size.items.size() != 2 || size.items[0].i != nt ||
      size.items[1].i != ni || !stride.is_seq() || stride.items.size() != 2 || stride.items[0].i != ni ||
      stride.items[1].i != 1)
    throw FormatError("scores are not a contiguous [" + std::to_string(nt) + ", " + std::to_string(ni) +
                          "] matrix (texts × images)", path);
  r.scores = LegacyStorage(t.items[0].items[0].s, path);
  if (static_cast<int64_t>(r.scores.size()) != nt * ni)
    throw FormatError("the score storage holds " + std::to_string(r.scores.size()) + " values, not texts × images",
                      path);
  return r;
}

std::map<std::string, std::vector<std::string>> ReadImg2Txts(const std::string& txt_db) {
  const std::string path = txt_db + "/img2txts.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError("missing img2txts.json (ITM evaluation needs each image's texts)", path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::map<std::string, std::vector<std::string>> out;
  try {
    const nlohmann::json j = nlohmann::json::parse(ss.str());
    for (auto it = j.begin(); it != j.end(); ++it) out[it.key()] = it.value().get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("img2txts.json must map image names to lists of text ids: ") + e.what(), path);
  }
  return out;
}

}  // namespace

std::string EvalItmResults(const std::string& results_bin, const std::string& txt_db, bool fix_uniter_quirks) {
  const ItmResults r = ReadItmResults(results_bin);
  const data::TxtTokDb db(txt_db, -1);
  std::map<std::string, std::string> txt2img;
  for (const auto& [id, imgs] : db.Txt2Img())
    if (imgs.size() == 1) txt2img[id] = imgs[0];
  const ItmMetrics m = ItmEval(r.scores, r.txt_ids, r.img_ids, txt2img, ReadImg2Txts(txt_db), fix_uniter_quirks,
                               txt_db);
  return FormatItmMetrics(m);
}

}  // namespace uniter::trainer

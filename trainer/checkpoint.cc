#include "trainer/internal/checkpoint.h"
#include "trainer/internal/pickle_writer.h"

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>

#include <cerrno>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <unordered_map>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/pickle_reader.h"

namespace uniter::trainer {
namespace {

// pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2): torch's legacy magic number.
constexpr unsigned char kLegacyMagic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                          0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};
constexpr int64_t kLegacyProtocol = 1001;

const std::map<std::string, at::ScalarType>& StorageTypes() {
  static const std::map<std::string, at::ScalarType> types = {
      {"torch.FloatStorage", at::kFloat},    {"torch.HalfStorage", at::kHalf},
      {"torch.DoubleStorage", at::kDouble},  {"torch.BFloat16Storage", at::kBFloat16},
      {"torch.LongStorage", at::kLong},      {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},    {"torch.CharStorage", at::kChar},
      {"torch.ByteStorage", at::kByte},      {"torch.BoolStorage", at::kBool}};
  return types;
}

at::ScalarType StorageDtype(const std::string& global, const std::string& where) {
  auto it = StorageTypes().find(global);
  if (it == StorageTypes().end()) throw FormatError(global + " is not a storage type", where);
  return it->second;
}

PickleLimits StateDictLimits() {
  PickleLimits limits;
  limits.allowed_globals = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                            "torch._utils._rebuild_parameter"};
  for (const auto& [name, type] : StorageTypes()) limits.allowed_globals.push_back(name);
  limits.allow_persistent_ids = true;
  return limits;
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) ThrowErrno("cannot open checkpoint", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A storage's bytes by key, checked against the dtype and element count the
// pickle's persistent id declares.
using StorageSource = std::function<at::Tensor(const std::string& key, at::ScalarType dtype, int64_t numel)>;

std::vector<int64_t> IntTuple(const PyValue& v, const std::string& what, const std::string& where) {
  if (!v.is_seq()) throw FormatError(what + " is a " + v.TypeName() + ", not a tuple", where);
  std::vector<int64_t> out;
  for (const auto& x : v.items) {
    if (!x.is_int()) throw FormatError(what + " holds a " + std::string(x.TypeName()), where);
    out.push_back(x.i);
  }
  return out;
}

class TensorBuilder {
 public:
  TensorBuilder(StorageSource source, std::string path) : source_(std::move(source)), path_(std::move(path)) {}

  at::Tensor Build(const PyValue& v, const std::string& key) {
    const std::string where = path_ + "[" + key + "]";
    if (v.kind != PyValue::Kind::kObject) throw FormatError(std::string("value is a ") + v.TypeName() + ", not a tensor", where);
    if (v.s == "torch._utils._rebuild_parameter") {
      if (v.items.empty()) throw FormatError("_rebuild_parameter without arguments", where);
      return Build(v.items[0], key);
    }
    if (v.s != "torch._utils._rebuild_tensor_v2" || v.items.size() < 4)
      throw FormatError("value is " + v.s + "(...), not a tensor", where);
    const at::Tensor storage = Storage(v.items[0], where);
    if (!v.items[1].is_int()) throw FormatError("storage offset is not an int", where);
    const int64_t offset = v.items[1].i;
    const auto size = IntTuple(v.items[2], "size", where), stride = IntTuple(v.items[3], "stride", where);
    if (size.size() != stride.size()) throw FormatError("size and stride differ in rank", where);
    // Overflow-checked: hostile sizes and strides must not wrap the bound.
    int64_t last = offset;
    bool empty = false;
    for (size_t d = 0; d < size.size(); ++d) {
      if (size[d] < 0 || stride[d] < 0) throw FormatError("negative size or stride", where);
      int64_t span = 0;
      if (size[d] == 0) empty = true;
      else if (__builtin_mul_overflow(size[d] - 1, stride[d], &span) || __builtin_add_overflow(last, span, &last))
        throw FormatError("size and stride overflow", where);
    }
    if (offset < 0 || (!empty && last >= storage.numel()))
      throw FormatError("tensor reaches past its storage (" + std::to_string(storage.numel()) + " elements)", where);
    if (empty) return at::empty(size, storage.options());
    // No state dict holds expanded (stride-0) tensors; refusing more elements
    // than the storage has keeps a hostile file from asking for huge clones.
    int64_t numel = 1;
    for (int64_t n : size)
      if (__builtin_mul_overflow(numel, n, &numel) || numel > storage.numel())
        throw FormatError("tensor has more elements than its storage (" + std::to_string(storage.numel()) + ")", where);
    return storage.as_strided(size, stride, offset).clone(at::MemoryFormat::Contiguous);
  }

 private:
  at::Tensor Storage(const PyValue& ref, const std::string& where) {
    // ('storage', <torch.XStorage>, key, location, numel[, view_metadata])
    if (ref.kind != PyValue::Kind::kPersistentId || ref.items.empty() || !ref.items[0].is_seq())
      throw FormatError("tensor storage is not a persistent id", where);
    const auto& pid = ref.items[0].items;
    if (pid.size() < 5 || !pid[0].is_str() || pid[0].s != "storage" || pid[1].kind != PyValue::Kind::kGlobal ||
        !pid[2].is_str() || !pid[4].is_int())
      throw FormatError("malformed storage reference", where);
    if (pid.size() > 5 && pid[5].kind != PyValue::Kind::kNone)
      throw FormatError("storage views (torch < 0.4 files) are not supported", where);
    const at::ScalarType dtype = StorageDtype(pid[1].s, where);
    auto it = cache_.find(pid[2].s);
    if (it == cache_.end()) it = cache_.emplace(pid[2].s, source_(pid[2].s, dtype, pid[4].i)).first;
    if (it->second.scalar_type() != dtype) throw FormatError("storage '" + pid[2].s + "' used with two dtypes", where);
    return it->second;
  }

  StorageSource source_;
  std::string path_;
  std::unordered_map<std::string, at::Tensor> cache_;
};

StateDict ToStateDict(const PyValue& dict, TensorBuilder& builder, const std::string& path) {
  if (dict.kind != PyValue::Kind::kDict)
    throw FormatError(std::string("the checkpoint holds a ") + dict.TypeName() + ", not a state dict", path);
  StateDict out;
  for (size_t i = 0; i < dict.keys.size(); ++i) {
    if (!dict.keys[i].is_str()) throw FormatError("a state-dict key is not a string", path);
    out.emplace_back(dict.keys[i].s, builder.Build(dict.values[i], dict.keys[i].s));
  }
  return out;
}

at::Tensor TensorFromBytes(const char* data, size_t bytes, at::ScalarType dtype, int64_t numel) {
  at::Tensor t = at::empty({numel}, at::TensorOptions().dtype(dtype));
  if (bytes) std::memcpy(t.data_ptr(), data, bytes);
  return t;
}

StateDict ReadZip(const std::string& path) {
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  std::string pickle;
  try {
    reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
    auto [data, size] = reader->getRecord("data.pkl");
    pickle.assign(static_cast<const char*>(data.get()), size);
    if (reader->hasRecord("byteorder")) {
      auto [order, n] = reader->getRecord("byteorder");
      if (std::string(static_cast<const char*>(order.get()), n) != "little")
        throw FormatError("big-endian checkpoints are not supported", path);
    }
  } catch (const c10::Error& e) {
    throw FormatError(std::string("bad zip checkpoint: ") + e.what_without_backtrace(), path);
  }
  const PyValue dict = ParsePickle(pickle, path + ":data.pkl", StateDictLimits());
  TensorBuilder builder(
      [&](const std::string& key, at::ScalarType dtype, int64_t numel) {
        const size_t want = static_cast<size_t>(numel) * c10::elementSize(dtype);
        try {
          auto [data, size] = reader->getRecord("data/" + key);
          if (size != want)
            throw FormatError("storage record data/" + key + " holds " + std::to_string(size) + " bytes, expected " +
                                  std::to_string(want), path);
          return TensorFromBytes(static_cast<const char*>(data.get()), size, dtype, numel);
        } catch (const c10::Error& e) {
          throw FormatError("storage record data/" + key + ": " + e.what_without_backtrace(), path);
        }
      },
      path);
  return ToStateDict(dict, builder, path);
}

// Every storage reference's key → dtype, found anywhere in `v`.
void CollectStorageTypes(const PyValue& v, std::unordered_map<std::string, at::ScalarType>* out) {
  if (v.kind == PyValue::Kind::kPersistentId && !v.items.empty() && v.items[0].is_seq()) {
    const auto& pid = v.items[0].items;
    if (pid.size() >= 3 && pid[1].kind == PyValue::Kind::kGlobal && pid[2].is_str())
      out->emplace(pid[2].s, StorageDtype(pid[1].s, "storage '" + pid[2].s + "'"));
  }
  for (const auto& c : v.items) CollectStorageTypes(c, out);
  for (const auto& c : v.values) CollectStorageTypes(c, out);
}

StateDict ReadLegacy(const std::string& path, const std::string& bytes) {
  const PickleLimits plain;
  size_t pos = sizeof kLegacyMagic;
  const PyValue protocol = ParsePickleAt(bytes, pos, path, plain, &pos);
  if (!protocol.is_int() || protocol.i != kLegacyProtocol)
    throw FormatError("unsupported legacy protocol version (expected 1001)", path);
  const PyValue sys_info = ParsePickleAt(bytes, pos, path, plain, &pos);
  if (const PyValue* le = sys_info.Find("little_endian"); le && le->kind == PyValue::Kind::kBool && !le->b)
    throw FormatError("big-endian checkpoints are not supported", path);
  const PyValue dict = ParsePickleAt(bytes, pos, path, StateDictLimits(), &pos);
  const PyValue keys = ParsePickleAt(bytes, pos, path, plain, &pos);
  if (keys.kind != PyValue::Kind::kList) throw FormatError("storage key list missing", path);
  // Storages follow in key-list order, each an int64 element count and the
  // raw bytes; the element width comes from the dict's references to them.
  std::unordered_map<std::string, at::ScalarType> types;
  CollectStorageTypes(dict, &types);
  struct Span {
    size_t offset;  // of the count
    int64_t count;
  };
  std::unordered_map<std::string, Span> spans;
  for (const auto& k : keys.items) {
    if (!k.is_str()) throw FormatError("offset " + std::to_string(pos) + ": a storage key is not a string", path);
    auto type = types.find(k.s);
    if (type == types.end()) throw FormatError("storage '" + k.s + "' is never referenced", path);
    if (bytes.size() - pos < 8)
      throw FormatError("offset " + std::to_string(pos) + ": truncated (size of storage '" + k.s + "' missing)", path);
    int64_t count = 0;
    std::memcpy(&count, bytes.data() + pos, 8);
    const size_t width = c10::elementSize(type->second), left = bytes.size() - pos - 8;
    if (count < 0 || static_cast<uint64_t>(count) > left / width)
      throw FormatError("offset " + std::to_string(pos) + ": truncated storage '" + k.s + "' (" +
                            std::to_string(count) + " elements declared, " + std::to_string(left) + " bytes left)",
                        path);
    spans[k.s] = {pos, count};
    pos += 8 + static_cast<size_t>(count) * width;
  }
  if (pos != bytes.size())
    throw FormatError("offset " + std::to_string(pos) + ": " + std::to_string(bytes.size() - pos) +
                          " bytes after the last storage", path);
  TensorBuilder builder(
      [&](const std::string& key, at::ScalarType dtype, int64_t numel) {
        auto it = spans.find(key);
        if (it == spans.end()) throw FormatError("storage '" + key + "' is not in the storage key list", path);
        if (it->second.count != numel)
          throw FormatError("offset " + std::to_string(it->second.offset) + ": storage '" + key + "' holds " +
                                std::to_string(it->second.count) + " elements, its reference says " +
                                std::to_string(numel), path);
        return TensorFromBytes(bytes.data() + it->second.offset + 8, numel * c10::elementSize(dtype), dtype, numel);
      },
      path);
  return ToStateDict(dict, builder, path);
}

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

std::string Shape(const at::Tensor& t) {
  std::ostringstream ss;
  ss << t.sizes();
  return ss.str();
}

// torch.save's data.pkl for a state dict (protocol 2), written directly:
// OrderedDict of _rebuild_tensor_v2(storage pid, 0, size, stride, False,
// OrderedDict()), storage i in record data/i. Only names Python's
// weights_only loader allows, so torch.load(path) reads it in torch 1.x and 2.x.

const char* StorageName(at::ScalarType t) {
  for (const auto& [name, type] : StorageTypes())
    if (type == t) return name.c_str() + 6;  // past "torch."
  throw UsageError(std::string("cannot save tensors of dtype ") + c10::toString(t));
}

std::string StateDictPickle(const StateDict& state) {
  PickleWriter w;
  w.Proto();
  w.Global("collections", "OrderedDict");
  w.Op(')');
  w.Op('R');
  w.Op('(');
  for (size_t i = 0; i < state.size(); ++i) {
    const at::Tensor& t = state[i].second;
    w.Str(state[i].first);
    w.Global("torch._utils", "_rebuild_tensor_v2");
    w.Op('(');
    w.Op('(');  // the persistent id
    w.Str("storage");
    w.Global("torch", StorageName(t.scalar_type()));
    w.Str(std::to_string(i));
    w.Str("cpu");
    w.Int(t.numel());
    w.Op('t');
    w.Op('Q');
    w.Int(0);
    w.IntTuple(t.sizes());
    w.IntTuple(t.strides());
    w.Op('\x89');  // requires_grad False
    w.Global("collections", "OrderedDict");
    w.Op(')');
    w.Op('R');
    w.Op('t');
    w.Op('R');
  }
  w.Op('u');
  w.Op('.');
  return w.Take();
}

}  // namespace

StateDict ReadStateDict(const std::string& path) {
  const std::string bytes = ReadBytes(path);
  if (bytes.size() >= 4 && bytes.compare(0, 4, "PK\x03\x04") == 0) return ReadZip(path);
  if (bytes.size() >= sizeof kLegacyMagic && std::memcmp(bytes.data(), kLegacyMagic, sizeof kLegacyMagic) == 0)
    return ReadLegacy(path, bytes);
  throw FormatError("not a torch checkpoint (neither a zip archive nor torch's legacy magic number)", path);
}

LoadReport LoadStateDict(torch::nn::Module& model, StateDict state, const std::string& where,
                         const LoadOptions& options) {
  LoadReport report;
  bool bert_layout = false;
  for (const auto& [key, t] : state) bert_layout = bert_layout || key.rfind("bert.", 0) == 0;
  // from_pretrained's renames (gamma → weight, beta → bias; a later duplicate
  // wins as with dict assignment), after convert_ckpt.py's bert → uniter.
  std::map<std::string, at::Tensor> by_key;
  std::vector<std::string> order;
  for (auto& [key, t] : state) {
    std::string k = bert_layout ? ReplaceAll(key, "bert", "uniter") : key;
    std::string renamed = k;
    if (k.find("gamma") != std::string::npos) renamed = ReplaceAll(k, "gamma", "weight");
    if (k.find("beta") != std::string::npos) renamed = ReplaceAll(k, "beta", "bias");
    if (renamed != key) report.renamed.push_back(key + " -> " + renamed);
    if (!by_key.count(renamed)) order.push_back(renamed);
    by_key[renamed] = std::move(t);
  }
  at::NoGradGuard no_grad;
  std::map<std::string, bool> used;
  auto load = [&](const std::string& name, at::Tensor& target) {
    auto it = by_key.find(name);
    if (it == by_key.end()) {
      report.missing.push_back(name);
      return;
    }
    used[name] = true;
    at::Tensor t = it->second;
    if (name == "uniter.embeddings.token_type_embeddings.weight" && options.expand_type_rows > 0 && t.dim() == 2 &&
        t.size(0) < options.expand_type_rows && t.size(0) > 0 && target.size(0) == options.expand_type_rows) {
      std::vector<at::Tensor> rows{t};
      for (int64_t r = t.size(0); r < options.expand_type_rows; ++r) rows.push_back(t.slice(0, t.size(0) - 1));
      t = at::cat(rows, 0);
      report.type_embedding_expanded = true;
    }
    if (!t.sizes().equals(target.sizes()))
      throw FormatError("key '" + name + "': shape " + Shape(t) + " in the checkpoint, " + Shape(target) +
                            " in the model", where);
    if (t.scalar_type() != target.scalar_type()) ++report.converted_fp16;
    target.copy_(t);
  };
  for (auto& p : model.named_parameters()) load(p.key(), p.value());
  for (auto& b : model.named_buffers()) load(b.key(), b.value());
  for (const auto& k : order)
    if (!used.count(k)) report.unexpected.push_back(k);
  return report;
}

LoadReport LoadCheckpoint(torch::nn::Module& model, const std::string& path, const LoadOptions& options) {
  const std::string bytes_head = [&] {
    std::ifstream in(path, std::ios::binary);
    char head[4] = {};
    in.read(head, 4);
    return std::string(head, static_cast<size_t>(in.gcount()));
  }();
  LoadReport report = LoadStateDict(model, ReadStateDict(path), path, options);
  report.format = bytes_head == std::string("PK\x03\x04", 4) ? "zip" : "legacy";
  return report;
}

void WriteStateDict(const StateDict& state, const std::string& path) {
  std::string zip;
  {
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t n) {
      zip.append(static_cast<const char*>(data), n);
      return n;
    });
    const std::string pickle = StateDictPickle(state);
    writer.writeRecord("data.pkl", pickle.data(), pickle.size());
    writer.writeRecord("byteorder", "little", 6);
    for (size_t i = 0; i < state.size(); ++i) {
      const at::Tensor& t = state[i].second;
      writer.writeRecord("data/" + std::to_string(i), t.data_ptr(), t.nbytes());
    }
    writer.writeEndOfFile();
  }
  WriteFileAtomic(path, zip);
}

void SaveCheckpoint(const torch::nn::Module& model, const std::string& path, at::ScalarType float_dtype) {
  auto saved = [&](const at::Tensor& t) {
    at::Tensor c = t.detach().to(at::kCPU);
    if (c.is_floating_point()) c = c.to(float_dtype);
    return c.contiguous();
  };
  StateDict state;
  for (const auto& p : model.named_parameters()) state.emplace_back(p.key(), saved(p.value()));
  for (const auto& b : model.named_buffers()) state.emplace_back(b.key(), saved(b.value()));
  WriteStateDict(state, path);
}

}  // namespace uniter::trainer

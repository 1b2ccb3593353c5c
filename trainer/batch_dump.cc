#include "trainer/internal/batch_dump.h"

#include <ATen/ATen.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <system_error>

#include "common/atomic_file.h"
#include "common/error.h"
#include "featdb/npy.h"

namespace uniter::trainer {
namespace {

featdb::DType NumpyDType(at::ScalarType t, const std::string& name) {
  switch (t) {
    case at::kLong: return featdb::DType::kInt64;
    case at::kInt: return featdb::DType::kInt32;
    case at::kShort: return featdb::DType::kInt16;
    case at::kChar: return featdb::DType::kInt8;
    case at::kByte: return featdb::DType::kUInt8;
    case at::kBool: return featdb::DType::kBool;
    case at::kFloat: return featdb::DType::kFloat32;
    case at::kDouble: return featdb::DType::kFloat64;
    case at::kHalf: return featdb::DType::kFloat16;
    default:
      throw UsageError("dump-batches: array '" + name + "' has dtype " + std::string(c10::toString(t)) +
                       ", which numpy lacks");
  }
}

featdb::Array ToArray(const std::string& name, const at::Tensor& tensor) {
  at::Tensor t = tensor.detach().to(at::kCPU);
  // numpy has no bfloat16; float32 holds every bf16 value exactly.
  if (t.scalar_type() == at::kBFloat16) t = t.to(at::kFloat);
  t = t.contiguous();
  featdb::Array a;
  a.name = name;
  a.dtype = NumpyDType(t.scalar_type(), name);
  a.shape.assign(t.sizes().begin(), t.sizes().end());
  a.data.assign(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  return a;
}

void Add(NamedArrays* out, const char* key, const at::Tensor& t) {
  if (t.defined()) out->emplace_back(key, t);
}

// The six keys every UNITER collate yields.
NamedArrays Shared(const Batch& b) {
  NamedArrays out;
  Add(&out, "input_ids", b.input_ids);
  Add(&out, "position_ids", b.position_ids);
  Add(&out, "img_feat", b.img_feat);
  Add(&out, "img_pos_feat", b.img_pos_feat);
  Add(&out, "attn_masks", b.attn_masks);
  Add(&out, "gather_index", b.gather_index);
  return out;
}

}  // namespace

BatchDumper::BatchDumper(std::string dir, int64_t limit) : dir_(std::move(dir)), limit_(limit) {}

std::string BatchDumper::NextStem() const {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "batch_%06lld", static_cast<long long>(written_));
  return buf;
}

void BatchDumper::Dump(const std::string& stem, const NamedArrays& arrays, double loss) {
  const std::string path = (std::filesystem::path(dir_) / (stem + ".npz")).string();
  std::vector<featdb::Array> out;
  std::set<std::string> seen;
  for (const auto& [name, t] : arrays) {
    if (!t.defined()) continue;
    if (name == "loss" || !seen.insert(name).second)
      throw UsageError("dump-batches: array name '" + name + "' given twice for " + path);
    out.push_back(ToArray(name, t));
  }
  const float l = static_cast<float>(loss);
  featdb::Array la;
  la.name = "loss";
  la.dtype = featdb::DType::kFloat32;
  la.data.assign(reinterpret_cast<const char*>(&l), sizeof(l));
  out.push_back(std::move(la));
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw IoError("cannot create the dump-batches folder: " + ec.message(), dir_);
  WriteFileAtomic(path, featdb::WriteNpz(out, /*compress=*/false));
  ++written_;
}

NamedArrays BatchArrays(const Batch& b, TaskKind task) {
  NamedArrays out = Shared(b);
  switch (task) {
    case TaskKind::kNlvr2:
      Add(&out, "img_type_ids", b.img_type_ids);
      Add(&out, "targets", b.targets);
      break;
    case TaskKind::kVqa:
    case TaskKind::kVe:
      Add(&out, "targets", b.targets);
      break;
    case TaskKind::kItm:
      out.emplace_back("sample_size", at::scalar_tensor(b.sample_size, at::kLong));
      break;
    case TaskKind::kRe:
      Add(&out, "obj_masks", b.obj_masks);
      Add(&out, "targets", b.targets);
      out.emplace_back("txt_lens", at::tensor(b.txt_lens, at::kLong));
      out.emplace_back("num_bbs", at::tensor(b.num_bbs, at::kLong));
      break;
    case TaskKind::kVcr:
      Add(&out, "txt_type_ids", b.txt_type_ids);
      Add(&out, "targets", b.targets);
      break;
  }
  return out;
}

NamedArrays PretrainBatchArrays(const PretrainBatch& p) {
  const Batch& b = p.batch;
  NamedArrays out = Shared(b);
  Add(&out, "txt_type_ids", b.txt_type_ids);
  Add(&out, "img_type_ids", b.img_type_ids);
  Add(&out, "txt_labels", p.txt_labels);
  Add(&out, "img_masks", b.img_masks);
  Add(&out, "img_mask_tgt", p.img_mask_tgt);
  Add(&out, "feat_targets", p.feat_targets);
  Add(&out, "label_targets", p.label_targets);
  Add(&out, "targets", b.targets);
  if (p.ot_scatter.defined()) {
    out.emplace_back("ot_inputs.ot_scatter", p.ot_scatter);
    out.emplace_back("ot_inputs.scatter_max", at::scalar_tensor(p.scatter_max, at::kLong));
    Add(&out, "ot_inputs.txt_pad", p.txt_pad);
    Add(&out, "ot_inputs.img_pad", p.img_pad);
  }
  return out;
}

}  // namespace uniter::trainer

#include "trainer/data/vcr_pretrain_datasets.h"

#include <ATen/ATen.h>
#include <c10/util/Half.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>

#include "common/error.h"
#include "trainer/data/internal/pretrain_collate.h"
#include "trainer/data/masking.h"
#include "trainer/data/py_random.h"
#include "trainer/data/token_bucket_sampler.h"

namespace uniter::trainer::data {
namespace {

// The first nbb feature rows as float32 (fp16 widened as .float() does).
std::vector<float> FeatFloats(const ImageFeat& im) {
  const size_t n = static_cast<size_t>(im.nbb * im.feat_dim);
  std::vector<float> out(n);
  if (im.feat_is_f16) {
    const auto* h = reinterpret_cast<const c10::Half*>(im.feat_bytes.data());
    for (size_t k = 0; k < n; ++k) out[k] = static_cast<float>(h[k]);
  } else {
    std::memcpy(out.data(), im.feat_bytes.data(), n * sizeof(float));
  }
  return out;
}

// _get_img_feat of VcrDetectFeatTxtTokDataset (MRC: of MrcDatasetForVCR, with
// the soft labels): torch.cat([gt, det]) of features, positions and labels.
ImageFeat ConcatImages(const VcrImage& img, const std::string& where) {
  if (!img.has_gt) return img.det;
  if (!img.has_det) return img.gt;
  const ImageFeat &a = img.gt, &b = img.det;
  if (a.feat_dim != b.feat_dim) throw FormatError("gt and detected features differ in size", where);
  if (a.label_dim != b.label_dim) throw FormatError("gt and detected soft labels differ in size", where);
  ImageFeat out;
  out.nbb = a.nbb + b.nbb;
  out.feat_dim = a.feat_dim;
  out.label_dim = a.label_dim;
  if (a.feat_is_f16 && b.feat_is_f16) {
    const size_t bytes = sizeof(uint16_t) * a.feat_dim;
    out.feat_bytes = a.feat_bytes.substr(0, a.nbb * bytes) + b.feat_bytes.substr(0, b.nbb * bytes);
  } else {  // torch.cat promotes to the wider type; both are float32 after .float() anyway
    out.feat_is_f16 = false;
    std::vector<float> f = FeatFloats(a), g = FeatFloats(b);
    f.insert(f.end(), g.begin(), g.end());
    out.feat_bytes.assign(reinterpret_cast<const char*>(f.data()), f.size() * sizeof(float));
  }
  out.pos = a.pos;
  out.pos.insert(out.pos.end(), b.pos.begin(), b.pos.end());
  out.soft_labels = a.soft_labels;
  out.soft_labels.insert(out.soft_labels.end(), b.soft_labels.begin(), b.soft_labels.end());
  return out;
}

// One text segment of _get_input_ids: its ids (MLM: masked) and labels.
void AddSegment(const std::vector<int64_t>& ids, int64_t type, bool mask, int64_t mask_id, int64_t v_begin,
                int64_t v_end, PyRandom& rng, std::vector<int64_t>* out_ids, std::vector<int64_t>* types,
                std::vector<int64_t>* labels) {
  if (mask) {
    MaskedTokens m = RandomWord(ids, v_begin, v_end, mask_id, rng);
    out_ids->insert(out_ids->end(), m.input_ids.begin(), m.input_ids.end());
    labels->insert(labels->end(), m.labels.begin(), m.labels.end());
  } else {
    out_ids->insert(out_ids->end(), ids.begin(), ids.end());
  }
  types->insert(types->end(), ids.size(), type);
}

const VcrPretrainOptions& Checked(const VcrPretrainOptions& o) {
  if (o.task == PretrainTask::kItm) throw UsageError("VCR pretraining has no ITM task (mlm, mrfr, mrc, mrc-kl)");
  if (o.vcr_task != "qa" && o.vcr_task != "qar")
    throw UsageError("VCR pretraining text must be 'qa' or 'qar', not '" + o.vcr_task + "'");
  if (o.mask_prob < 0 || o.mask_prob > 1) throw UsageError("mrm_prob must be in [0, 1]");
  return o;
}

}  // namespace

VcrPretrainDataset::VcrPretrainDataset(const std::string& txt_db, const std::string& img_spec,
                                       const ImgDbOptions& img_options, const VcrPretrainOptions& options)
    : options_(Checked(options)) {
  txt_ = std::make_shared<const VcrTxtDb>(txt_db, options.max_txt_len, options.vcr_task);
  img_ = OpenVcrImgDbs(img_spec, img_options);
  Init();
}

VcrPretrainDataset::VcrPretrainDataset(std::shared_ptr<const VcrTxtDb> txt, VcrImgDbs img,
                                       const VcrPretrainOptions& options)
    : txt_(std::move(txt)), img_(std::move(img)), options_(Checked(options)) {
  Init();
}

void VcrPretrainDataset::Init() {
  const std::string meta_path = txt_->dir() + "/meta.json";
  try {
    std::ifstream in(meta_path);
    if (!in) throw IoError("cannot open", meta_path);
    const auto meta = nlohmann::json::parse(in);
    mask_id_ = meta.at("MASK").get<int64_t>();
    const auto v = meta.at("v_range").get<std::vector<int64_t>>();
    if (v.size() != 2 || v[0] >= v[1]) throw FormatError("v_range must be [begin, end) with begin < end", meta_path);
    v_begin_ = v[0];
    v_end_ = v[1];
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("meta.json needs MASK and v_range: ") + e.what(), meta_path);
  }
  const auto n = static_cast<int64_t>(txt_->ids().size());
  for (int64_t j : ShardIndices(n, options_.rank, options_.world)) {
    rows_.push_back(static_cast<size_t>(j));
    lens_.push_back(VcrLen(img_, *txt_, static_cast<size_t>(j)));
  }
}

const std::string& VcrPretrainDataset::id(int64_t i) const { return txt_->ids()[rows_.at(i)]; }

VcrPretrainExample VcrPretrainDataset::Get(int64_t i) const {
  const VcrExample ex = txt_->Get(id(i));
  const std::string where = txt_->dir() + "[" + ex.id + "]";
  if (ex.qa_target < 0 || ex.qa_target >= 4) throw FormatError("qa_target must be 0-3 for pretraining", where);
  const bool qar = options_.vcr_task == "qar";
  if (qar && (ex.qar_target < 0 || ex.qar_target >= 4))
    throw FormatError("qar_target must be 0-3 for pretraining", where);
  PyRandom rng(ExampleSeed(options_.seed, epoch_, i));
  const bool mlm = options_.task == PretrainTask::kMlm;

  // _get_input_ids: q (type 0) [SEP](0) a (type 2) [, [SEP](2) r (type 3)].
  std::vector<int64_t> ids, types, labels;
  auto add = [&](const std::vector<int64_t>& seg, int64_t type) {
    AddSegment(seg, type, mlm, mask_id_, v_begin_, v_end_, rng, &ids, &types, &labels);
  };
  add(ex.q, 0);
  ids.push_back(txt_->sep()), types.push_back(0), labels.push_back(-1);
  add(ex.as[ex.qa_target], 2);
  if (qar) {
    ids.push_back(txt_->sep()), types.push_back(2), labels.push_back(-1);
    add(ex.rs[ex.qar_target], 3);
  }

  // combine_txt_inputs: [CLS] … [SEP], the end types repeated, labels −1 there.
  VcrPretrainExample out;
  Example& e = out.pretrain.example;
  e.id = ex.id;
  e.input_ids.reserve(ids.size() + 2);
  e.input_ids.push_back(txt_->cls());
  e.input_ids.insert(e.input_ids.end(), ids.begin(), ids.end());
  e.input_ids.push_back(txt_->sep());
  out.txt_type_ids.reserve(types.size() + 2);
  out.txt_type_ids.push_back(types.front());
  out.txt_type_ids.insert(out.txt_type_ids.end(), types.begin(), types.end());
  out.txt_type_ids.push_back(types.back());
  if (mlm) {
    out.pretrain.txt_labels.push_back(-1);
    out.pretrain.txt_labels.insert(out.pretrain.txt_labels.end(), labels.begin(), labels.end());
    out.pretrain.txt_labels.push_back(-1);
  }

  const bool mrc = options_.task == PretrainTask::kMrc || options_.task == PretrainTask::kMrcKl;
  VcrImage img;
  if (img_.gt) img.gt = img_.gt->Get(ex.img_fnames[0], mrc), img.has_gt = true;
  if (img_.det) img.det = img_.det->Get(ex.img_fnames[1], mrc), img.has_det = true;
  e.images.push_back(ConcatImages(img, where));
  if (!mlm) out.pretrain.img_mask = ImgMask(options_.mask_prob, e.images[0].nbb, rng);
  return out;
}

PretrainBatch CollateVcrPretrain(PretrainTask task, std::vector<VcrPretrainExample> examples) {
  if (examples.empty()) throw UsageError("CollateVcrPretrain: empty batch");
  size_t max_tl = 0;
  for (const auto& ex : examples) max_tl = std::max(max_tl, ex.txt_type_ids.size());
  at::Tensor types = at::zeros({static_cast<int64_t>(examples.size()), static_cast<int64_t>(max_tl)}, at::kLong);
  int64_t* t = types.data_ptr<int64_t>();
  std::vector<PretrainExample> plain;
  plain.reserve(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    std::copy(examples[i].txt_type_ids.begin(), examples[i].txt_type_ids.end(), t + i * max_tl);
    plain.push_back(std::move(examples[i].pretrain));
  }
  PretrainBatch p = CollatePretrain(task, std::move(plain), /*ot_inputs=*/false);
  p.batch.txt_type_ids = types;
  return p;
}

}  // namespace uniter::trainer::data

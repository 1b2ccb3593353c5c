#include "trainer/data/internal/pretrain_collate.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>

#include "common/error.h"
#include "trainer/data/internal/collate.h"

namespace uniter::trainer::data {
namespace {

// mlm_collate: txt_labels padded with −1.
at::Tensor TxtLabels(const std::vector<PretrainExample>& examples, int64_t max_tl) {
  at::Tensor t = at::full({static_cast<int64_t>(examples.size()), max_tl}, -1, at::kLong);
  int64_t* p = t.data_ptr<int64_t>();
  for (size_t i = 0; i < examples.size(); ++i)
    std::copy(examples[i].txt_labels.begin(), examples[i].txt_labels.end(), p + i * max_tl);
  return t;
}

// mrfr/mrc_collate: img_masks [B, max_nbb] and img_mask_tgt [B, L] (zeros for
// the text, then the region mask), both padded with False; feat_targets or
// label_targets are the masked rows, taken before the features are zeroed.
void RegionTargets(PretrainTask task, const std::vector<PretrainExample>& examples,
                   const std::vector<int64_t>& txt_lens, PretrainBatch* p) {
  Batch& b = p->batch;
  const int64_t bs = b.img_feat.size(0), max_nbb = b.img_feat.size(1), out_size = b.attn_masks.size(1);
  b.img_masks = at::zeros({bs, max_nbb}, at::kBool);
  p->img_mask_tgt = at::zeros({bs, out_size}, at::kBool);
  bool* m = b.img_masks.data_ptr<bool>();
  bool* tgt = p->img_mask_tgt.data_ptr<bool>();
  for (int64_t i = 0; i < bs; ++i) {
    const std::vector<bool>& mask = examples[i].img_mask;
    for (size_t k = 0; k < mask.size(); ++k) {
      m[i * max_nbb + k] = mask[k];
      tgt[i * out_size + txt_lens[i] + k] = mask[k];
    }
  }
  if (task == PretrainTask::kMrfr) {
    p->feat_targets = b.img_feat.index({b.img_masks}).contiguous();
  } else {
    const int64_t dim = examples[0].example.images[0].label_dim;
    std::vector<float> rows;
    for (const PretrainExample& ex : examples) {
      const ImageFeat& im = ex.example.images[0];
      if (im.label_dim != dim) throw FormatError("images of one batch differ in soft-label size", "batch");
      for (size_t k = 0; k < ex.img_mask.size(); ++k)
        if (ex.img_mask[k]) rows.insert(rows.end(), im.soft_labels.begin() + k * dim, im.soft_labels.begin() + (k + 1) * dim);
    }
    p->label_targets = at::from_blob(rows.data(), {static_cast<int64_t>(rows.size()) / std::max<int64_t>(dim, 1), dim},
                                     at::kFloat).clone();
  }
  b.img_feat.masked_fill_(b.img_masks.unsqueeze(-1), 0);  // _mask_img_feat
}

// itm_ot_collate's ot_inputs: where each joint slot lands in [text | image]
// order, and the paddings of both.
void OtInputs(const std::vector<int64_t>& txt_lens, const std::vector<int64_t>& nbbs, PretrainBatch* p) {
  const Batch& b = p->batch;
  const int64_t bs = b.input_ids.size(0), max_tl = b.input_ids.size(1), joint = b.attn_masks.size(1);
  const int64_t max_nbb = b.img_feat.size(1);
  p->ot_scatter = at::arange(joint, at::kLong).unsqueeze(0).repeat({bs, 1});
  p->txt_pad = at::zeros({bs, max_tl}, at::kBool);
  p->img_pad = at::zeros({bs, max_nbb}, at::kBool);
  int64_t* s = p->ot_scatter.data_ptr<int64_t>();
  for (int64_t i = 0; i < bs; ++i) {
    for (int64_t k = txt_lens[i]; k < joint; ++k) s[i * joint + k] = max_tl + (k - txt_lens[i]);
    p->txt_pad[i].slice(0, txt_lens[i]).fill_(true);
    p->img_pad[i].slice(0, nbbs[i]).fill_(true);
  }
  p->scatter_max = p->ot_scatter.max().item<int64_t>();
}

}  // namespace

PretrainBatch CollatePretrain(PretrainTask task, std::vector<PretrainExample> examples, bool ot_inputs) {
  if (examples.empty()) throw UsageError("CollatePretrain: empty batch");
  std::vector<int64_t> txt_lens, nbbs;
  std::vector<Example> plain;
  plain.reserve(examples.size());
  for (PretrainExample& ex : examples) {
    txt_lens.push_back(static_cast<int64_t>(ex.example.input_ids.size()));
    nbbs.push_back(ex.example.images.at(0).nbb);
    plain.push_back(std::move(ex.example));
  }
  DatasetOptions layout;  // one row per example, no type ids, no answer targets
  layout.task = Task::kVqa;
  layout.use_img_type = false;
  PretrainBatch p;
  p.batch = Collate(layout, 0, plain);
  for (size_t i = 0; i < examples.size(); ++i) examples[i].example = std::move(plain[i]);

  switch (task) {
    case PretrainTask::kMlm:
      p.txt_labels = TxtLabels(examples, p.batch.input_ids.size(1));
      break;
    case PretrainTask::kMrfr:
    case PretrainTask::kMrc:
    case PretrainTask::kMrcKl:
      RegionTargets(task, examples, txt_lens, &p);
      break;
    case PretrainTask::kItm: {
      p.batch.targets = at::empty({static_cast<int64_t>(examples.size())}, at::kLong);
      for (size_t i = 0; i < examples.size(); ++i) p.batch.targets.data_ptr<int64_t>()[i] = examples[i].itm_target;
      if (ot_inputs) OtInputs(txt_lens, nbbs, &p);
      break;
    }
  }
  return p;
}

}  // namespace uniter::trainer::data

#include "trainer/data/internal/collate.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>

#include "common/error.h"

namespace uniter::trainer::data {
namespace {

// One encoder row: text ids, its image rows and their type ids.
struct Row {
  const std::vector<int64_t>* input_ids = nullptr;
  std::vector<const ImageFeat*> images;  // concatenated in order
  std::vector<int64_t> img_types;        // one per image (0 = none)
  int64_t nbb = 0;
};

std::vector<Row> BuildRows(const DatasetOptions& o, const std::vector<Example>& examples) {
  std::vector<Row> rows;
  for (const Example& ex : examples) {
    if (o.task == Task::kNlvr2Paired) {
      for (size_t k = 0; k < ex.images.size(); ++k) {
        Row r{&ex.input_ids, {&ex.images[k]}, {o.use_img_type ? static_cast<int64_t>(k + 1) : 0}, ex.images[k].nbb};
        rows.push_back(std::move(r));
      }
    } else {
      Row r{&ex.input_ids, {}, {}, 0};
      for (size_t k = 0; k < ex.images.size(); ++k) {
        r.images.push_back(&ex.images[k]);
        r.img_types.push_back(o.task == Task::kNlvr2Triplet && o.use_img_type ? static_cast<int64_t>(k + 1) : 0);
        r.nbb += ex.images[k].nbb;
      }
      rows.push_back(std::move(r));
    }
  }
  return rows;
}

at::Tensor Targets(const DatasetOptions& o, int64_t num_answers, const std::vector<Example>& examples) {
  const bool nlvr2 = o.task == Task::kNlvr2Paired || o.task == Task::kNlvr2Triplet;
  size_t with = 0;
  for (const Example& ex : examples) with += nlvr2 ? ex.target.has_value() : ex.has_soft_target;
  if (with == 0) return {};
  if (with != examples.size()) throw UsageError("batch mixes examples with and without targets");
  const int64_t b = static_cast<int64_t>(examples.size());
  if (nlvr2) {
    at::Tensor t = at::empty({b}, at::kLong);
    for (int64_t i = 0; i < b; ++i) t.data_ptr<int64_t>()[i] = *examples[i].target;
    return t;
  }
  at::Tensor t = at::zeros({b, num_answers}, at::kFloat);
  float* p = t.data_ptr<float>();
  for (int64_t i = 0; i < b; ++i) {
    const Example& ex = examples[i];
    // _get_vqa_target scatters only when both lists are non-empty; a repeated label keeps its last score.
    if (ex.labels.empty() || ex.scores.empty()) continue;
    for (size_t k = 0; k < ex.labels.size(); ++k) {
      const int64_t l = ex.labels[k];
      if (l < 0 || l >= num_answers)
        throw FormatError("target label " + std::to_string(l) + " is outside [0, " + std::to_string(num_answers) + ")",
                          "example " + ex.id);
      p[i * num_answers + l] = ex.scores[k];
    }
  }
  return t;
}

}  // namespace

Batch Collate(const DatasetOptions& options, int64_t num_answers, const std::vector<Example>& examples,
              const FeatAllocator& alloc_feat) {
  if (examples.empty()) throw UsageError("Collate: empty batch");
  const std::vector<Row> rows = BuildRows(options, examples);
  const int64_t bs = static_cast<int64_t>(rows.size());
  int64_t max_tl = 0, max_nbb = 0, out_size = 0, feat_dim = 0;
  for (const Row& r : rows) {
    const int64_t tl = static_cast<int64_t>(r.input_ids->size());
    max_tl = std::max(max_tl, tl);
    max_nbb = std::max(max_nbb, r.nbb);
    out_size = std::max(out_size, tl + r.nbb);
    for (const ImageFeat* im : r.images) {
      if (im->nbb == 0) continue;
      if (feat_dim != 0 && im->feat_dim != feat_dim)
        throw FormatError("images of one batch differ in feature size", "batch");
      feat_dim = im->feat_dim;
    }
  }

  Batch b;
  b.input_ids = at::zeros({bs, max_tl}, at::kLong);
  b.position_ids = at::arange(max_tl, at::kLong).unsqueeze(0);
  // Only the padding is zeroed: the real rows are written once.
  b.img_feat = alloc_feat ? alloc_feat({bs, max_nbb, feat_dim}) : at::empty({bs, max_nbb, feat_dim}, at::kFloat);
  b.img_pos_feat = at::zeros({bs, max_nbb, 7}, at::kFloat);
  b.attn_masks = at::zeros({bs, out_size}, at::kLong);
  b.gather_index = at::arange(out_size, at::kLong).unsqueeze(0).repeat({bs, 1});
  const bool typed = options.use_img_type && options.task != Task::kVqa && options.task != Task::kVe;
  if (typed) b.img_type_ids = at::zeros({bs, max_nbb}, at::kLong);

  int64_t* ids = b.input_ids.data_ptr<int64_t>();
  float* feat = b.img_feat.data_ptr<float>();
  float* pos = b.img_pos_feat.data_ptr<float>();
  int64_t* mask = b.attn_masks.data_ptr<int64_t>();
  int64_t* gi = b.gather_index.data_ptr<int64_t>();
  int64_t* types = typed ? b.img_type_ids.data_ptr<int64_t>() : nullptr;
  for (int64_t i = 0; i < bs; ++i) {
    const Row& r = rows[i];
    const int64_t tl = static_cast<int64_t>(r.input_ids->size());
    std::copy(r.input_ids->begin(), r.input_ids->end(), ids + i * max_tl);
    int64_t at_row = 0;
    for (size_t k = 0; k < r.images.size(); ++k) {
      const ImageFeat& im = *r.images[k];
      if (im.nbb > 0) {
        im.CopyFeatures(feat + (i * max_nbb + at_row) * feat_dim);
        std::memcpy(pos + (i * max_nbb + at_row) * 7, im.pos.data(), im.pos.size() * sizeof(float));
      }
      if (types) std::fill(types + i * max_nbb + at_row, types + i * max_nbb + at_row + im.nbb, r.img_types[k]);
      at_row += im.nbb;
    }
    std::fill(feat + (i * max_nbb + at_row) * feat_dim, feat + (i + 1) * max_nbb * feat_dim, 0.0f);
    std::fill(mask + i * out_size, mask + i * out_size + tl + r.nbb, 1);
    // get_gather_index: image slot k of row i reads the concatenation's column max_tl + k.
    for (int64_t k = 0; k < r.nbb; ++k) gi[i * out_size + tl + k] = max_tl + k;
    b.num_tokens += tl + r.nbb;
  }
  b.targets = Targets(options, num_answers, examples);
  for (const Example& ex : examples) b.qids.push_back(ex.id);
  b.num_examples = static_cast<int64_t>(examples.size());
  return b;
}

}  // namespace uniter::trainer::data

// inf_itm.py and utils/itm_eval.py's inference: every text × image pair of a
// split scored, UNITER's scores.json and results.bin written.
#include <ATen/ATen.h>
#include <c10/util/Half.h>
#include <tbb/parallel_for.h>
#include <torch/utils.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <string_view>
#include <cstdio>
#include <filesystem>

#include "common/atomic_file.h"
#include "common/error.h"
#include "featdb/array.h"
#include "featdb/npy.h"
#include "trainer/dist.h"
#include "trainer/internal/amp.h"
#include "trainer/internal/dist_group.h"
#include "trainer/internal/itm_run.h"
#include "trainer/itm_eval.h"

namespace uniter::trainer {
namespace {

// One mini-batch of images, padded as ItmValDataset.get_batch pads them.
struct ImageChunk {
  at::Tensor img_feat, img_pos_feat;  // [n, max_nbb, D], [n, max_nbb, 7]
  std::vector<int64_t> nbb;
};

ImageChunk LoadChunk(const data::ItmDb& db, const std::vector<std::string>& names) {
  std::vector<data::ImageFeat> feats(names.size());
  tbb::parallel_for(size_t{0}, names.size(), [&](size_t i) { feats[i] = db.img->Get(names[i]); });
  ImageChunk c;
  int64_t max_nbb = 0, dim = 0;
  for (const auto& f : feats) {
    c.nbb.push_back(f.nbb);
    max_nbb = std::max(max_nbb, f.nbb);
    if (f.nbb > 0) dim = f.feat_dim;
  }
  const int64_t n = static_cast<int64_t>(names.size());
  c.img_feat = at::zeros({n, max_nbb, dim}, at::kFloat);
  c.img_pos_feat = at::zeros({n, max_nbb, 7}, at::kFloat);
  for (int64_t i = 0; i < n; ++i) {
    if (feats[i].nbb == 0) continue;
    if (feats[i].feat_dim != dim) throw FormatError("images differ in feature size", db.img->db_path());
    feats[i].CopyFeatures(c.img_feat[i].data_ptr<float>());
    std::copy(feats[i].pos.begin(), feats[i].pos.end(), c.img_pos_feat[i].data_ptr<float>());
  }
  return c;
}

// The text repeated over the chunk's rows. Every row has the same text
// length, so get_gather_index is the identity.
Batch TextAgainstChunk(const std::vector<int64_t>& ids, const ImageChunk& c) {
  const int64_t n = c.img_feat.size(0), tl = static_cast<int64_t>(ids.size()), out = tl + c.img_feat.size(1);
  Batch b;
  b.input_ids = at::tensor(ids, at::kLong).unsqueeze(0).expand({n, tl}).contiguous();
  b.position_ids = at::arange(tl, at::kLong).unsqueeze(0);
  b.img_feat = c.img_feat;
  b.img_pos_feat = c.img_pos_feat;
  b.attn_masks = at::zeros({n, out}, at::kLong);
  int64_t* m = b.attn_masks.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) std::fill(m + i * out, m + i * out + tl + c.nbb[i], 1);
  b.gather_index = at::arange(out, at::kLong).unsqueeze(0).expand({n, out}).contiguous();
  b.num_examples = n;
  return b;
}

}  // namespace

std::vector<float> ScoreMatrix(TaskModelImpl& model, const data::ItmDb& db, const std::vector<std::string>& txt_ids,
                               const std::vector<std::string>& img_ids, int64_t minibatch, bool progress,
                               const InferPlacement& place) {
  if (minibatch <= 0) throw UsageError("the inference mini-batch size must be positive");
  const int64_t nt = static_cast<int64_t>(txt_ids.size()), ni = static_cast<int64_t>(img_ids.size());
  std::vector<std::vector<int64_t>> texts(txt_ids.size());
  tbb::parallel_for(size_t{0}, txt_ids.size(), [&](size_t i) { texts[i] = data::TextInputs(db, txt_ids[i]); });
  std::vector<float> scores(static_cast<size_t>(nt * ni));
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  for (int64_t st = 0; st < ni; st += minibatch) {
    const int64_t n = std::min(minibatch, ni - st);
    ImageChunk chunk = LoadChunk(db, std::vector<std::string>(img_ids.begin() + st, img_ids.begin() + st + n));
    // The image rows go to the device once per mini-batch, not once per text.
    chunk.img_feat = chunk.img_feat.to(place.device);
    chunk.img_pos_feat = chunk.img_pos_feat.to(place.device);
    for (int64_t t = 0; t < nt; ++t) {
      const at::Tensor s = InferScores(model, TextAgainstChunk(texts[t], chunk), place);
      std::copy(s.data_ptr<float>(), s.data_ptr<float>() + n, scores.begin() + t * ni + st);
    }
    if (progress) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::fprintf(stderr, "itm: %lld/%lld images scored against %lld texts, %.0f pairs/s\n",
                   static_cast<long long>(st + n), static_cast<long long>(ni), static_cast<long long>(nt),
                   (st + n) * nt / std::max(secs, 1e-9));
    }
  }
  if (was_training) model.train();
  return scores;
}

std::vector<float> ShardedScoreMatrix(TaskModelImpl& model, const data::ItmDb& db,
                                      const std::vector<std::string>& txt_ids, const std::vector<std::string>& img_ids,
                                      int64_t minibatch, bool progress, DistGroup* dist,
                                      const InferPlacement& place) {
  if (!dist) return ScoreMatrix(model, db, txt_ids, img_ids, minibatch, progress, place);
  const size_t world = static_cast<size_t>(dist->world_size()), rank = static_cast<size_t>(dist->rank());
  const size_t ni = img_ids.size();
  std::vector<std::string> mine;
  for (size_t i = rank; i < txt_ids.size(); i += world) mine.push_back(txt_ids[i]);
  const std::vector<float> part = ScoreMatrix(model, db, mine, img_ids, minibatch, progress, place);
  // Rank 0 writes each arriving piece straight into its rows (rank q's row k
  // is text q + k * world), never holding another rank's whole part.
  const size_t row_bytes = ni * sizeof(float);
  std::vector<float> all(rank == 0 ? txt_ids.size() * ni : 0);
  auto sink = [&](int q, uint64_t offset, std::string_view b) {
    while (!b.empty()) {
      const size_t i = row_bytes ? q + offset / row_bytes * world : txt_ids.size();
      if (i >= txt_ids.size())
        throw Error("rank " + std::to_string(q) + " sent more ITM score rows than its share of the texts");
      const size_t in_row = offset % row_bytes, n = std::min(b.size(), row_bytes - in_row);
      std::memcpy(reinterpret_cast<char*>(all.data() + i * ni) + in_row, b.data(), n);
      offset += n;
      b.remove_prefix(n);
    }
  };
  const std::vector<uint64_t> sizes = dist->GatherToRootInto(
      std::string(reinterpret_cast<const char*>(part.data()), part.size() * sizeof(float)), sink);
  if (rank != 0) return {};
  for (size_t q = 0; q < world; ++q) {
    const size_t rows = txt_ids.size() > q ? (txt_ids.size() - q + world - 1) / world : 0;
    if (sizes[q] != rows * row_bytes)
      throw Error("rank " + std::to_string(q) + " sent " + std::to_string(sizes[q]) +
                  " bytes of ITM scores, expected " + std::to_string(rows * row_bytes));
  }
  return all;
}

std::vector<float> RoundToHalf(const std::vector<float>& scores, std::vector<uint16_t>* bits) {
  std::vector<float> out(scores.size());
  if (bits) bits->resize(scores.size());
  for (size_t i = 0; i < scores.size(); ++i) {
    const c10::Half h(scores[i]);
    out[i] = static_cast<float>(h);
    if (bits) (*bits)[i] = h.x;
  }
  return out;
}

namespace {

// inf_itm.py: under torchrun every rank scores its share of the texts and
// rank 0 evaluates and writes (in the txt_db's text order, so the files and
// metrics are one process's).
InferResult InferItmOn(const InferOptions& o, const RunOptions& run, const DistEnv& env) {
  const std::unique_ptr<DistGroup> dist =
      DistGroup::Create(env, false, std::chrono::seconds(run.dist_timeout_s));
  const int rank = env.rank;
  const InferPlacement place = ResolveInferPlacement(o.device, o.fp16, o.amp_dtype);
  const data::ItmDb db = data::OpenItmDb(o.txt_db, o.img_db, data::ImgDbOptionsOf(o), -1, true);
  // ItmEvalDataset's assert: at least one full mini-batch of images.
  if (static_cast<int64_t>(db.img_names.size()) < o.batch_size)
    throw UsageError(o.txt_db + ": " + std::to_string(db.img_names.size()) + " images in img2txts.json, fewer than "
                     "the inference mini-batch of " + std::to_string(o.batch_size) + " (pass a smaller --batch_size)");
  TaskOptions to;
  to.task = TaskKind::kItm;
  Model model(UniterConfig::FromJsonFile(o.model_config), to, 0);
  const LoadReport report = model.Load(o.checkpoint);
  // inf_itm.py tests `'rank_output' not in checkpoint` — never true of a
  // state dict's keys — so rank_output is always re-made from itm_output.
  const bool has_rank = std::find(report.missing.begin(), report.missing.end(), "rank_output.weight") ==
                        report.missing.end();
  if (!o.fix_uniter_quirks || !has_rank) InitItmRankOutput(model.module());
  model.module().to(place.device);
  AnnounceInferPlacement(place, run.quiet || rank != 0);

  const std::vector<std::string> img_ids = data::EvalImageOrder(db);
  const std::vector<float> raw =
      ShardedScoreMatrix(model.module(), db, db.ids, img_ids, o.batch_size, !run.quiet && rank == 0, dist.get(), place);
  if (rank != 0) {
    dist->Barrier();
    return {};
  }
  std::vector<uint16_t> half;
  const std::vector<float> scores = RoundToHalf(raw, &half);
  std::map<std::string, std::string> txt2img = db.txt2img;
  const ItmMetrics m = ItmEval(scores, db.ids, img_ids, txt2img, db.img2txts, o.fix_uniter_quirks, o.txt_db);

  std::filesystem::create_directories(o.output_dir);
  InferResult r;
  r.examples = static_cast<int64_t>(db.ids.size() * img_ids.size());
  r.results = o.output_dir + "/scores.json";
  WriteFileAtomic(o.output_dir + "/results.bin", ItmResultsPickle(half, db.ids, img_ids));
  WriteFileAtomic(r.results, ItmScoresJson(m));
  if (!o.save_logits.empty())
    WriteFileAtomic(o.save_logits,
                    featdb::WriteNpy(featdb::Array::FromFloat32(
                        "logits", {static_cast<int64_t>(db.ids.size()), static_cast<int64_t>(img_ids.size())}, raw)));
  r.metrics = ItmMetricList(m);
  if (dist) dist->Barrier();  // rank 0 hosts the store: the others leave first
  return r;
}

}  // namespace

InferResult InferItm(const InferOptions& o, const RunOptions& run) {
  const DistEnv env = ReadDistEnv();
  if (env.world_size <= 1) return InferItmOn(o, run, env);
  try {
    return InferItmOn(o, run, env);
  } catch (...) {
    RethrowNamingRank(env);
  }
}

}  // namespace uniter::trainer

// utils/itm_eval.py's itm_eval: recall@1/5/10 of a texts × images score
// matrix, both directions, as UNITER defines them. LibTorch-free.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace uniter::trainer {

struct ItmMetrics {
  double txt_r1 = 0, txt_r5 = 0, txt_r10 = 0, txt_r_mean = 0;  // text retrieval (image → its texts)
  double img_r1 = 0, img_r5 = 0, img_r10 = 0, img_r_mean = 0;  // image retrieval (text → its image)
  double r_mean = 0;
};

// `scores`: row-major [txt_ids.size(), img_ids.size()]. txt2img names each
// text's image; img2txts each image's texts (every one must be a row).
// Ranking takes the top 10 of a row (or column), equal scores ordered by
// lower index first (torch.topk leaves that order unspecified).
// UNITER's quirk (default): image retrieval counts the nonzero() pairs of
// (row, position) with `< K` on both columns, so a text whose gt image is in
// its top 10 and whose own row index is < K counts once more.
// `fix_quirks`: only the position counts. Throws FormatError naming `where`
// when a text or image lacks its counterpart.
ItmMetrics ItmEval(const std::vector<float>& scores, const std::vector<std::string>& txt_ids,
                   const std::vector<std::string>& img_ids, const std::map<std::string, std::string>& txt2img,
                   const std::map<std::string, std::vector<std::string>>& img2txts, bool fix_quirks,
                   const std::string& where);

// scores.json as inf_itm.py writes it (json.dump of the eval_log dict, its key order).
std::string ItmScoresJson(const ItmMetrics& m);
// `name=value` lines, one per metric.
std::string FormatItmMetrics(const ItmMetrics& m);
// The same metrics as (scores.json key, value), in that order.
std::vector<std::pair<std::string, double>> ItmMetricList(const ItmMetrics& m);

}  // namespace uniter::trainer

namespace uniter::trainer {

// inf_itm.py's results.bin: pickle.dump((score_matrix, txt_ids, img_ids)),
// the matrix a torch.HalfTensor [texts, images] (fp16 bits, row-major) that
// pickles as _rebuild_tensor_v2(_load_from_bytes(<legacy torch.save of its
// storage>), ...), pickle protocol 3 as Python 3 writes by default. The
// storage's location is "cpu" (UNITER's is the GPU it ran on, which
// torch.load without map_location cannot restore on a CPU-only machine).
std::string ItmResultsPickle(const std::vector<uint16_t>& half_scores, const std::vector<std::string>& txt_ids,
                             const std::vector<std::string>& img_ids);

}  // namespace uniter::trainer

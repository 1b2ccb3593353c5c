#include "trainer/itm_eval.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <numeric>
#include <unordered_map>

#include "common/error.h"

namespace uniter::trainer {
namespace {

constexpr int kTop = 10;

// The first min(10, n) indices of `n` values (read through `at`) by score
// descending, equal scores by lower index first.
template <class At>
std::vector<int64_t> Top10(int64_t n, At at) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  const int64_t k = std::min<int64_t>(kTop, n);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int64_t a, int64_t b) {
    const float x = at(a), y = at(b);
    return x > y || (x == y && a < b);
  });
  idx.resize(static_cast<size_t>(k));
  return idx;
}

// Python's repr of a float, as json.dump writes it: shortest round-trip
// digits, ".0" on integral values.
std::string PyFloat(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, r.ptr);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

}  // namespace

ItmMetrics ItmEval(const std::vector<float>& scores, const std::vector<std::string>& txt_ids,
                   const std::vector<std::string>& img_ids, const std::map<std::string, std::string>& txt2img,
                   const std::map<std::string, std::vector<std::string>>& img2txts, bool fix_quirks,
                   const std::string& where) {
  const int64_t nt = static_cast<int64_t>(txt_ids.size()), ni = static_cast<int64_t>(img_ids.size());
  if (static_cast<int64_t>(scores.size()) != nt * ni) throw UsageError("ItmEval: score matrix size mismatch");
  if (nt == 0 || ni == 0) throw FormatError("no texts or no images to evaluate", where);
  std::unordered_map<std::string, int64_t> img2j, txt2i;
  for (int64_t j = 0; j < ni; ++j) img2j.emplace(img_ids[j], j);
  for (int64_t i = 0; i < nt; ++i) txt2i.emplace(txt_ids[i], i);
  ItmMetrics m;

  // Image retrieval: each text's row.
  int64_t ir[3] = {0, 0, 0};
  const int ks[3] = {1, 5, 10};
  for (int64_t i = 0; i < nt; ++i) {
    auto t = txt2img.find(txt_ids[i]);
    if (t == txt2img.end()) throw FormatError("text '" + txt_ids[i] + "' is not in txt2img", where);
    auto g = img2j.find(t->second);
    if (g == img2j.end())
      throw FormatError("text '" + txt_ids[i] + "': its image '" + t->second + "' is not among the images", where);
    const float* row = scores.data() + i * ni;
    const auto top = Top10(ni, [&](int64_t j) { return row[j]; });
    for (size_t pos = 0; pos < top.size(); ++pos) {
      if (top[pos] != g->second) continue;
      for (int k = 0; k < 3; ++k) {
        ir[k] += static_cast<int64_t>(pos) < ks[k];
        if (!fix_quirks) ir[k] += i < ks[k];  // nonzero()'s row column compared too
      }
    }
  }
  m.img_r1 = static_cast<double>(ir[0]) / nt;
  m.img_r5 = static_cast<double>(ir[1]) / nt;
  m.img_r10 = static_cast<double>(ir[2]) / nt;

  // Text retrieval: each image's column; the best-placed of its texts.
  int64_t tr[3] = {0, 0, 0};
  for (int64_t j = 0; j < ni; ++j) {
    auto it = img2txts.find(img_ids[j]);
    if (it == img2txts.end()) throw FormatError("image '" + img_ids[j] + "' is not in img2txts", where);
    std::vector<int64_t> gt;
    for (const std::string& t : it->second) {
      auto r = txt2i.find(t);
      if (r == txt2i.end())
        throw FormatError("image '" + img_ids[j] + "': its text '" + t + "' is not among the texts", where);
      gt.push_back(r->second);
    }
    const auto top = Top10(nt, [&](int64_t i) { return scores[i * ni + j]; });
    int64_t rank = kTop;
    for (size_t pos = 0; pos < top.size() && rank == kTop; ++pos)
      if (std::find(gt.begin(), gt.end(), top[pos]) != gt.end()) rank = static_cast<int64_t>(pos);
    for (int k = 0; k < 3; ++k) tr[k] += rank < ks[k];
  }
  m.txt_r1 = static_cast<double>(tr[0]) / ni;
  m.txt_r5 = static_cast<double>(tr[1]) / ni;
  m.txt_r10 = static_cast<double>(tr[2]) / ni;
  m.txt_r_mean = (m.txt_r1 + m.txt_r5 + m.txt_r10) / 3;
  m.img_r_mean = (m.img_r1 + m.img_r5 + m.img_r10) / 3;
  m.r_mean = (m.txt_r_mean + m.img_r_mean) / 2;
  return m;
}

std::string ItmScoresJson(const ItmMetrics& m) {
  const std::pair<const char*, double> items[] = {
      {"txt_r1", m.txt_r1}, {"txt_r5", m.txt_r5}, {"txt_r10", m.txt_r10}, {"txt_r_mean", m.txt_r_mean},
      {"img_r1", m.img_r1}, {"img_r5", m.img_r5}, {"img_r10", m.img_r10}, {"img_r_mean", m.img_r_mean},
      {"r_mean", m.r_mean}};
  std::string s = "{";
  for (const auto& [k, v] : items) s += std::string(s.size() > 1 ? ", " : "") + "\"" + k + "\": " + PyFloat(v);
  return s + "}";
}

std::vector<std::pair<std::string, double>> ItmMetricList(const ItmMetrics& m) {
  return {{"txt_r1", m.txt_r1}, {"txt_r5", m.txt_r5}, {"txt_r10", m.txt_r10}, {"txt_r_mean", m.txt_r_mean},
          {"img_r1", m.img_r1}, {"img_r5", m.img_r5}, {"img_r10", m.img_r10}, {"img_r_mean", m.img_r_mean},
          {"r_mean", m.r_mean}};
}

std::string FormatItmMetrics(const ItmMetrics& m) {
  std::string out;
  char buf[64];
  for (const auto& [name, value] : ItmMetricList(m)) {
    std::snprintf(buf, sizeof buf, "=%.6f\n", value);
    out += name + buf;
  }
  return out;
}

}  // namespace uniter::trainer

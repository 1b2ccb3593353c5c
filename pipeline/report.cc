#include "pipeline/report.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "pipeline/manifest.h"
#include "trainer/tensorboard.h"

namespace uniter::pipeline {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Num(double v, const char* fmt = "%.4f") {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

std::string Escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += ch;
    }
  }
  return out;
}

json ReadJson(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return nullptr;
  std::ostringstream s;
  s << in.rdbuf();
  return json::parse(s.str(), nullptr, false);
}

constexpr int kW = 420, kH = 220, kPad = 44;

// A line chart of (x, y) points with its axis ranges written at the corners.
std::string LineChart(const std::string& title, const std::vector<trainer::ScalarPoint>& pts) {
  std::string svg = "<figure><figcaption>" + Escape(title) + "</figcaption><svg width=\"" + std::to_string(kW) +
                    "\" height=\"" + std::to_string(kH) + "\" xmlns=\"http://www.w3.org/2000/svg\">";
  svg += "<rect x=\"" + std::to_string(kPad) + "\" y=\"10\" width=\"" + std::to_string(kW - kPad - 10) +
         "\" height=\"" + std::to_string(kH - kPad - 10) + "\" fill=\"#fafafa\" stroke=\"#999\"/>";
  if (!pts.empty()) {
    double x0 = pts.front().step, x1 = pts.back().step, y0 = pts[0].value, y1 = pts[0].value;
    for (const auto& p : pts) y0 = std::min(y0, p.value), y1 = std::max(y1, p.value);
    if (x1 == x0) x1 = x0 + 1;
    if (y1 == y0) y1 = y0 + 1e-9, y0 -= 1e-9;
    const double pw = kW - kPad - 10, ph = kH - kPad - 10;
    std::string path;
    for (const auto& p : pts) {
      const double x = kPad + (p.step - x0) / (x1 - x0) * pw, y = 10 + (1 - (p.value - y0) / (y1 - y0)) * ph;
      path += (path.empty() ? "" : " ") + Num(x, "%.1f") + "," + Num(y, "%.1f");
    }
    svg += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"" + path + "\"/>";
    if (pts.size() < 30)
      for (const auto& p : pts)
        svg += "<circle r=\"2.5\" fill=\"#1f77b4\" cx=\"" + Num(kPad + (p.step - x0) / (x1 - x0) * pw, "%.1f") +
               "\" cy=\"" + Num(10 + (1 - (p.value - y0) / (y1 - y0)) * ph, "%.1f") + "\"/>";
    auto text = [&](double x, double y, const std::string& s, const char* anchor) {
      svg += "<text font-size=\"11\" text-anchor=\"" + std::string(anchor) + "\" x=\"" + Num(x, "%.0f") +
             "\" y=\"" + Num(y, "%.0f") + "\">" + s + "</text>";
    };
    text(kPad - 4, 20, Num(y1, "%.3g"), "end");
    text(kPad - 4, kH - kPad, Num(y0, "%.3g"), "end");
    text(kPad, kH - kPad + 16, Num(x0, "%.0f"), "start");
    text(kW - 10, kH - kPad + 16, Num(x1, "%.0f"), "end");
    text(kPad + pw / 2, kH - 8, "step", "middle");
  }
  return svg + "</svg></figure>";
}

// Bars of counts per value (values are small integers: lengths, box counts).
std::string Histogram(const std::string& title, const std::map<int64_t, int64_t>& counts, const std::string& id) {
  std::string svg = "<figure id=\"" + id + "\"><figcaption>" + Escape(title) + "</figcaption><svg width=\"" +
                    std::to_string(kW) + "\" height=\"" + std::to_string(kH) + "\" xmlns=\"http://www.w3.org/2000/svg\">";
  if (!counts.empty()) {
    const int64_t lo = counts.begin()->first, hi = counts.rbegin()->first;
    int64_t top = 0;
    for (const auto& [v, n] : counts) top = std::max(top, n);
    const double pw = kW - kPad - 10, ph = kH - kPad - 10, bw = pw / static_cast<double>(hi - lo + 1);
    for (const auto& [v, n] : counts) {
      const double h = ph * static_cast<double>(n) / static_cast<double>(top);
      svg += "<rect fill=\"#ff7f0e\" x=\"" + Num(kPad + (v - lo) * bw, "%.1f") + "\" y=\"" + Num(10 + ph - h, "%.1f") +
             "\" width=\"" + Num(std::max(bw - 1, 1.0), "%.1f") + "\" height=\"" + Num(h, "%.1f") + "\"><title>" +
             std::to_string(v) + ": " + std::to_string(n) + "</title></rect>";
    }
    auto text = [&](double x, double y, const std::string& s, const char* anchor) {
      svg += "<text font-size=\"11\" text-anchor=\"" + std::string(anchor) + "\" x=\"" + Num(x, "%.0f") +
             "\" y=\"" + Num(y, "%.0f") + "\">" + s + "</text>";
    };
    text(kPad - 4, 20, std::to_string(top), "end");
    text(kPad - 4, kH - kPad, "0", "end");
    text(kPad, kH - kPad + 16, std::to_string(lo), "start");
    text(kW - 10, kH - kPad + 16, std::to_string(hi), "end");
  }
  return svg + "</svg></figure>";
}

std::string Td(const std::string& v, const std::string& id = "") {
  return id.empty() ? "<td>" + v + "</td>" : "<td id=\"" + id + "\">" + v + "</td>";
}

std::string MetricsSection(const std::map<std::string, Manifest>& stages) {
  std::string h = "<h2>Metrics</h2><table><tr><th>metric</th><th>value</th></tr>";
  auto eval = stages.find("eval");
  if (eval != stages.end()) {
    // The task's own metrics (NLVR2 accuracy, consistency, ...; VQA accuracy,
    // overall, questions; VE accuracy, examples, correct): floats first.
    const json& m = eval->second.result["metrics"];
    for (bool floats : {true, false})
      for (const auto& [k, v] : m.items())
        if (v.is_number_float() == floats)
          h += "<tr><td>dev " + k + "</td>" +
               Td(floats ? Num(v.get<double>()) : std::to_string(v.get<int64_t>()), "metric-" + k) + "</tr>";
  }
  auto train = stages.find("train");
  if (train != stages.end()) {
    const json& r = train->second.result;
    h += "<tr><td>training steps</td>" + Td(std::to_string(r["items"].get<int64_t>()), "metric-steps") + "</tr>";
    h += "<tr><td>last validation accuracy</td>" + Td(Num(r["val_acc"].get<double>()), "metric-val-acc") + "</tr>";
    h += "<tr><td>last validation loss</td>" + Td(Num(r["val_loss"].get<double>()), "metric-val-loss") + "</tr>";
  }
  return h + "</table>";
}

std::string CurvesSection(const std::string& log_dir) {
  std::error_code ec;
  if (!fs::is_directory(log_dir, ec)) return "";
  const auto scalars = trainer::ReadScalars(log_dir);
  std::string h = "<h2>Training</h2><div class=\"row\">";
  std::string lasts = "<table><tr><th>curve</th><th>points</th><th>last step</th><th>last value</th></tr>";
  // train_vqa.py logs validation untagged by split (valid/acc); the others valid/val_acc;
  // train_itm.py recall of the gt image among a mini-batch (valid/recall_K, or full_val's R@K).
  for (const auto& [tag, label, id] : std::vector<std::array<std::string, 3>>{
           {"loss", "training loss", "loss"}, {"lr", "learning rate", "lr"},
           {"valid/val_acc", "validation accuracy", "val-acc"}, {"valid/acc", "validation accuracy", "val-acc"},
           {"valid/val_loss", "validation loss", "val-loss"}, {"valid/loss", "validation loss", "val-loss"},
           {"valid/recall_1", "validation recall@1", "val-recall-1"}, {"valid/recall_10", "validation recall@10", "val-recall-10"},
           {"valid/r_mean", "validation R@K mean", "val-r-mean"}}) {
    auto it = scalars.find(tag);
    if (it == scalars.end() || it->second.empty()) continue;
    h += LineChart(label + " (" + tag + ")", it->second);
    lasts += "<tr><td>" + tag + "</td>" + Td(std::to_string(it->second.size()), "curve-" + id + "-points") +
             Td(std::to_string(it->second.back().step), "curve-" + id + "-step") +
             Td(Num(it->second.back().value, "%.6g"), "curve-" + id + "-last") + "</tr>";
  }
  return h + "</div>" + lasts + "</table>";
}

std::string DatasetSection(const ReportInputs& in, const std::map<std::string, Manifest>& stages) {
  std::string h = "<h2>Data</h2><div class=\"row\">";
  std::string table = "<table><tr><th>split</th><th>examples</th><th>mean tokens</th><th>images</th><th>mean boxes</th></tr>";
  for (size_t i = 0; i < in.splits.size(); ++i) {
    const std::string& split = in.splits[i];
    std::map<int64_t, int64_t> lens, boxes;
    int64_t ex = 0, tok = 0, imgs = 0, nbb = 0;
    const json id2len = ReadJson(in.txt_dbs[i] + "/id2len.json");
    if (id2len.is_object())
      for (const auto& [k, v] : id2len.items()) ++lens[v.get<int64_t>()], ++ex, tok += v.get<int64_t>();
    const json nbbs = ReadJson(in.nbb_jsons[i]);
    if (nbbs.is_object())
      for (const auto& [k, v] : nbbs.items()) ++boxes[v.get<int64_t>()], ++imgs, nbb += v.get<int64_t>();
    h += Histogram(split + ": text length (tokens)", lens, "hist-len-" + split);
    h += Histogram(split + ": boxes per image", boxes, "hist-boxes-" + split);
    table += "<tr><td>" + split + "</td>" + Td(std::to_string(ex), "data-" + split + "-examples") +
             Td(Num(ex ? static_cast<double>(tok) / ex : 0, "%.2f"), "data-" + split + "-mean-len") +
             Td(std::to_string(imgs), "data-" + split + "-images") +
             Td(Num(imgs ? static_cast<double>(nbb) / imgs : 0, "%.2f"), "data-" + split + "-mean-boxes") + "</tr>";
  }
  h += "</div>" + table + "</table><h3>Rejects</h3><table><tr><th>stage</th><th>reason</th><th>count</th></tr>";
  int64_t total = 0;
  for (const auto& [name, m] : stages) {
    const std::string path = m.result.value("rejects_path", "");
    if (path.empty()) continue;
    std::map<std::string, int64_t> reasons;
    std::ifstream in_file(path);
    for (std::string line; std::getline(in_file, line);) {
      const json j = json::parse(line, nullptr, false);
      if (j.is_object()) ++reasons[j.value("reason", "?")];
    }
    for (const auto& [reason, n] : reasons) {
      h += "<tr><td>" + name + "</td><td>" + Escape(reason) + "</td><td>" + std::to_string(n) + "</td></tr>";
      total += n;
    }
  }
  return h + "<tr><td colspan=\"2\">total</td>" + Td(std::to_string(total), "rejects-total") + "</tr></table>";
}

std::string StagesSection(const std::vector<Manifest>& ordered) {
  std::string h = "<h2>Stages</h2><table><tr><th>stage</th><th>seconds</th><th>items</th><th>per second</th>"
                  "<th>rejects</th><th>summary</th></tr>";
  for (const Manifest& m : ordered) {
    const json& r = m.result;
    const double secs = r.value("seconds", 0.0);
    const double items = r.contains("items") ? r["items"].get<double>() : 0;
    h += "<tr><td>" + m.stage + "</td>" + Td(Num(secs, "%.2f"), "stage-" + m.stage + "-seconds") +
         Td(Num(items, "%.0f") + " " + r.value("unit", ""), "stage-" + m.stage + "-items") +
         Td(Num(secs > 0 ? items / secs : 0, "%.2f")) + Td(std::to_string(r.value("rejects", 0))) +
         Td(Escape(r.value("summary", ""))) + "</tr>";
  }
  return h + "</table>";
}

}  // namespace

void WriteReport(const ReportInputs& in, const std::string& path) {
  std::vector<Manifest> ordered;
  std::map<std::string, Manifest> stages;
  for (const auto& p : in.stage_manifests) {
    Manifest m;
    if (!ReadManifest(p, &m)) continue;
    ordered.push_back(m);
    stages[m.stage] = m;
  }
  std::sort(ordered.begin(), ordered.end(), [](const Manifest& a, const Manifest& b) {
    auto rank = [](const std::string& s) {
      for (const char* p : {"convert", "extract", "pack", "train", "infer", "eval"})
        if (s.starts_with(p)) return static_cast<int>(std::string_view("convert extract pack train infer eval").find(p));
      return 99;
    };
    return rank(a.stage) != rank(b.stage) ? rank(a.stage) < rank(b.stage) : a.stage < b.stage;
  });
  std::string html =
      "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>uniter pipeline: " + Escape(in.task) +
      "</title><style>body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0}"
      "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee}td:first-child{text-align:left}"
      "figure{display:inline-block;margin:6px}figcaption{font-size:13px;font-weight:bold}.row{display:flex;"
      "flex-wrap:wrap}</style></head><body><h1>uniter pipeline: " + Escape(in.task) + "</h1><p>Output root: <code>" +
      Escape(in.root) + "</code></p>";
  html += MetricsSection(stages);
  html += CurvesSection(in.train_log_dir);
  html += DatasetSection(in, stages);
  html += StagesSection(ordered);
  html += "</body></html>\n";
  WriteFileAtomic(path, html);
}

}  // namespace uniter::pipeline

#include "trainer/nlvr2_eval.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/error.h"
#include "featdb/img_db.h"  // PythonFloatRepr

namespace uniter::trainer {
namespace {

// Lines of a text file; IoError when it cannot be read.
std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot read", path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(std::move(line));
  if (in.bad()) throw IoError("read error", path);
  return lines;
}

// Python's str.strip() for the ASCII whitespace a CSV line can carry.
std::string_view Strip(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n\v\f";
  const size_t b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(kSpace) - b + 1);
}

// ASCII lower-casing: labels are "True"/"False", and no non-ASCII character
// lower-cases (Python's str.lower) to an ASCII letter other than U+212A
// (Kelvin sign -> 'k'), which neither word has.
std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::unordered_map<std::string, std::string> ReadPredictions(const std::string& path) {
  std::unordered_map<std::string, std::string> predictions;
  const auto lines = ReadLines(path);
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string_view line = Strip(lines[i]);
    if (line.empty()) continue;  // the script would crash on it; nothing to score
    const size_t comma = line.find(',');
    if (comma == std::string_view::npos) {
      throw FormatError("line " + std::to_string(i + 1) + ": expected 'identifier,prediction'", path);
    }
    const size_t next = line.find(',', comma + 1);  // fields past the second are ignored, as split(",")[1]
    predictions[std::string(line.substr(0, comma))] =
        std::string(line.substr(comma + 1, next == std::string_view::npos ? next : next - comma - 1));
  }
  return predictions;
}

// "dev-850-0-0" -> "dev-850--0": the sentence an example belongs to.
std::string SentenceKey(const std::string& identifier, const std::string& where) {
  std::vector<std::string> fields;
  size_t start = 0;
  for (size_t dash; (dash = identifier.find('-', start)) != std::string::npos; start = dash + 1)
    fields.push_back(identifier.substr(start, dash - start));
  fields.push_back(identifier.substr(start));
  if (fields.size() < 3) throw FormatError("identifier '" + identifier + "' has fewer than 3 '-' fields", where);
  fields[2].clear();
  std::string key = fields[0];
  for (size_t i = 1; i < fields.size(); ++i) key += "-" + fields[i];
  return key;
}

}  // namespace

Nlvr2Metrics EvalNlvr2(const std::string& results_csv, const std::string& annotations) {
  const auto predictions = ReadPredictions(results_csv);
  const auto lines = ReadLines(annotations);
  Nlvr2Metrics m;
  std::unordered_map<std::string, bool> consistent;
  std::vector<std::string> missing;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (Strip(lines[i]).empty()) continue;
    const std::string where = annotations + ":" + std::to_string(i + 1);
    std::string identifier, label;
    try {
      const auto j = nlohmann::json::parse(lines[i]);
      identifier = j.at("identifier").get<std::string>();
      label = j.at("label").get<std::string>();
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(std::string("not an NLVR2 annotation: ") + e.what(), where);
    }
    ++m.examples;
    const auto it = predictions.find(identifier);
    if (it == predictions.end()) {
      missing.push_back(identifier);
      continue;
    }
    const std::string key = SentenceKey(identifier, where);
    auto [group, fresh] = consistent.try_emplace(key, true);
    if (Lower(it->second) == Lower(label)) {
      ++m.correct;
    } else {
      group->second = false;
    }
  }
  if (!missing.empty()) {
    std::string ids;
    for (size_t i = 0; i < missing.size() && i < 5; ++i) ids += (i ? ", " : "") + missing[i];
    throw UsageError(std::to_string(missing.size()) + " of " + std::to_string(m.examples) +
                         " examples have no prediction (" + ids + (missing.size() > 5 ? ", ..." : "") + ")",
                     results_csv);
  }
  if (m.examples == 0) throw FormatError("no annotations", annotations);
  m.sentences = static_cast<int64_t>(consistent.size());
  for (const auto& [key, ok] : consistent) m.consistent += ok ? 1 : 0;
  m.accuracy = static_cast<double>(m.correct) / static_cast<double>(m.examples);
  m.consistency = static_cast<double>(m.consistent) / static_cast<double>(m.sentences);
  return m;
}

std::string FormatNlvr2Metrics(const Nlvr2Metrics& m) {
  return "accuracy=" + featdb::PythonFloatRepr(m.accuracy) + "\nconsistency=" +
         featdb::PythonFloatRepr(m.consistency) + "\n";
}

}  // namespace uniter::trainer

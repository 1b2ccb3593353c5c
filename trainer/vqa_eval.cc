#include "trainer/vqa_eval.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "common/error.h"
#include "featdb/img_db.h"  // PythonFloatRepr

namespace uniter::trainer {
namespace {

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot read", path);
  std::ostringstream s;
  s << in.rdbuf();
  try {
    return nlohmann::json::parse(s.str());
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("not JSON: ") + e.what(), path);
  }
}

// Python's str.strip() for ASCII whitespace.
std::string Strip(const std::string& s) {
  constexpr const char* kSpace = " \t\r\n\v\f";
  const size_t b = s.find_first_not_of(kSpace);
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(kSpace) - b + 1);
}

std::string PredictedAnswer(std::string a, const VqaNormalizer& norm) {
  for (char& c : a)
    if (c == '\n' || c == '\t') c = ' ';
  return norm.process_digit_article(norm.process_punctuation(Strip(a)));
}

// Python's round(x, 2) on a double: correctly rounded, ties to even on the
// exact binary value, which printf's %.2f also does; parsed back to the double.
double Round2(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", x);
  return std::strtod(buf, nullptr);
}

}  // namespace

VqaMetrics EvalVqa(const std::string& results_json, const std::string& annotations_json, const VqaNormalizer& norm) {
  const nlohmann::json results = ReadJson(results_json);
  if (!results.is_array()) throw FormatError("expected [{\"answer\", \"question_id\"}, ...]", results_json);
  std::map<int64_t, std::string> predicted;
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    if (!r.is_object() || !r.contains("question_id") || !r["question_id"].is_number_integer() ||
        !r.contains("answer") || !r["answer"].is_string())
      throw FormatError("entry " + std::to_string(i) + " needs an integer question_id and a string answer",
                        results_json);
    if (!predicted.emplace(r["question_id"].get<int64_t>(), r["answer"].get<std::string>()).second)
      throw FormatError("question " + std::to_string(r["question_id"].get<int64_t>()) + " is answered twice",
                        results_json);
  }
  const nlohmann::json ann = ReadJson(annotations_json);
  if (!ann.is_object() || !ann.contains("annotations") || !ann["annotations"].is_array())
    throw FormatError("expected {\"annotations\": [...]}", annotations_json);
  double sum = 0;
  VqaMetrics m;
  for (const auto& a : ann["annotations"]) {
    int64_t qid = 0;
    std::vector<std::string> humans;
    try {
      qid = a.at("question_id").get<int64_t>();
      for (const auto& h : a.at("answers")) humans.push_back(h.at("answer").get<std::string>());
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(std::string("not a VQA annotation: ") + e.what(), annotations_json);
    }
    if (humans.empty()) throw FormatError("question " + std::to_string(qid) + " has no answers", annotations_json);
    const auto it = predicted.find(qid);
    if (it == predicted.end())
      throw UsageError(results_json + ": question " + std::to_string(qid) + " of " + annotations_json +
                       " has no prediction (the results must cover the annotated questions)");
    const std::string res = PredictedAnswer(it->second, norm);
    predicted.erase(it);
    bool differ = false;
    for (const auto& h : humans) differ |= h != humans[0];
    if (differ)
      for (auto& h : humans) h = norm.process_punctuation(h);
    int64_t matching = 0;
    for (const auto& h : humans) matching += h == res ? 1 : 0;
    // Leaving out human j: the others matching = matching - (j matches).
    double acc = 0;
    for (const auto& h : humans) acc += std::min(1.0, static_cast<double>(matching - (h == res ? 1 : 0)) / 3);
    sum += acc / static_cast<double>(humans.size());
    ++m.questions;
  }
  if (!predicted.empty())
    throw UsageError(results_json + ": question " + std::to_string(predicted.begin()->first) + " is not in " +
                     annotations_json);
  if (m.questions == 0) throw FormatError("no annotations", annotations_json);
  m.accuracy = sum / static_cast<double>(m.questions);
  m.overall = Round2(100 * sum / static_cast<double>(m.questions));
  return m;
}

std::string FormatVqaMetrics(const VqaMetrics& m) {
  return "accuracy=" + featdb::PythonFloatRepr(m.accuracy) + "\noverall=" + featdb::PythonFloatRepr(m.overall) +
         "\nquestions=" + std::to_string(m.questions) + "\n";
}

}  // namespace uniter::trainer

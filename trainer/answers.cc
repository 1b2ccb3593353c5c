#include "trainer/answers.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "common/error.h"

namespace uniter::trainer {

std::vector<std::pair<std::string, int64_t>> ReadAns2Label(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open ans2label", path);
  std::ostringstream s;
  s << in.rdbuf();
  nlohmann::ordered_json j;  // the file's order, as Python's dict keeps it
  try {
    j = nlohmann::ordered_json::parse(s.str());
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("not JSON: ") + e.what(), path);
  }
  if (!j.is_object()) throw FormatError("ans2label must map answers to indices", path);
  std::vector<std::pair<std::string, int64_t>> out;
  std::vector<bool> seen(j.size(), false);
  for (const auto& [answer, index] : j.items()) {
    if (!index.is_number_integer() || index.get<int64_t>() < 0 || index.get<size_t>() >= seen.size() ||
        seen[index.get<size_t>()])
      throw FormatError("answer '" + answer + "': index is not a unique integer in [0, " +
                            std::to_string(seen.size()) + ")",
                        path);
    seen[index.get<size_t>()] = true;
    out.emplace_back(answer, index.get<int64_t>());
  }
  return out;
}

std::vector<std::string> ReadLabel2Ans(const std::string& path) {
  const auto pairs = ReadAns2Label(path);
  std::vector<std::string> out(pairs.size());
  for (const auto& [answer, index] : pairs) out[index] = answer;
  return out;
}

}  // namespace uniter::trainer

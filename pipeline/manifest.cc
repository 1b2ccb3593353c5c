#include "pipeline/manifest.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/version.h"

namespace uniter::pipeline {
namespace {

namespace fs = std::filesystem;

std::string ToolVersion() { return std::string(UNITER_VERSION) + " " + UNITER_GIT_DESCRIBE; }

}  // namespace

std::string HashFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot read input", path);
  uint64_t h = 1469598103934665603ull;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const std::streamsize n = in.gcount();
    for (std::streamsize i = 0; i < n; ++i) {
      h ^= static_cast<uint8_t>(buf[i]);
      h *= 1099511628211ull;
    }
  }
  if (in.bad()) throw IoError("cannot read input", path);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

void Manifest::AddInput(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(path, ec))
      if (e.is_regular_file()) files.push_back(e.path().string());
    if (ec) throw IoError("cannot list input folder: " + ec.message(), path);
    std::sort(files.begin(), files.end());
    for (const auto& f : files) AddInput(f);
    return;
  }
  const auto size = fs::file_size(path, ec);
  if (ec) throw IoError("no such input", path);
  inputs.push_back({{"path", path}, {"size", size}, {"fnv1a64", HashFile(path)}});
}

bool Manifest::SameWork(const Manifest& other) const {
  return stage == other.stage && options == other.options && inputs == other.inputs;
}

std::string Manifest::Dump() const {
  nlohmann::json j = {{"stage", stage}, {"tool_version", ToolVersion()}, {"options", options},
                      {"inputs", inputs}, {"result", result}};
  return j.dump(1) + "\n";
}

bool ReadManifest(const std::string& path, Manifest* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream text;
  text << in.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("stage") || !j.contains("tool_version")) return false;
  // Another tool version's output is redone: its records may differ.
  if (j["tool_version"] != ToolVersion()) return false;
  out->stage = j.value("stage", "");
  out->options = j.value("options", nlohmann::json::object());
  out->inputs = j.value("inputs", nlohmann::json::array());
  out->result = j.value("result", nlohmann::json::object());
  return true;
}

void WriteManifest(const std::string& path, const Manifest& m) { WriteFileAtomic(path, m.Dump()); }

}  // namespace uniter::pipeline

// A stage's manifest: what went into its output (each input's size and
// content hash, the options, the tool version) and what came out (counts,
// seconds). Written atomically into the stage's output folder as the stage's
// last act, so a manifest that matches the current inputs means the output is
// complete and current; anything else is redone (or, for a stage that
// resumes, continued).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace uniter::pipeline {

struct Manifest {
  std::string stage;
  nlohmann::json options = nlohmann::json::object();
  nlohmann::json inputs = nlohmann::json::array();  // [{path, size, fnv1a64}]
  nlohmann::json result = nlohmann::json::object(); // not part of the match

  // Adds a file, or every regular file of a folder (sorted, not recursive).
  // Throws IoError naming a missing or unreadable input.
  void AddInput(const std::string& path);
  // Whether `other` describes the same work (stage, tool version, options, inputs).
  bool SameWork(const Manifest& other) const;
  std::string Dump() const;  // with the tool version
};

// FNV-1a 64 of a file's bytes, as 16 hex digits. Throws IoError.
std::string HashFile(const std::string& path);

// The manifest at `path`, or false when there is none (a malformed one counts as none).
bool ReadManifest(const std::string& path, Manifest* out);
// Writes it atomically (common/atomic_file.h).
void WriteManifest(const std::string& path, const Manifest& m);

}  // namespace uniter::pipeline

#include "featdb/txt_db.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "common/atomic_file.h"
#include "common/error.h"
#include "featdb/lmdb_env.h"

namespace fs = std::filesystem;

namespace uniter::featdb {

nlohmann::json ReadJsonFile(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return nullptr;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open", path);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("invalid JSON: ") + e.what(), path);
  }
}

void WriteJsonFile(const std::string& path, const nlohmann::json& j) { WriteFileAtomic(path, j.dump()); }

TxtDbWriter::TxtDbWriter(const std::string& dir, const TxtDbWriterOptions& options) : dir_(dir) {
  if (IsLmdbDir(dir)) {
    if (options.force) {
      RemoveLmdb(dir);
    } else if (!options.resume) {
      throw UsageError("a database already exists here (use --resume to continue it or --force to replace it)", dir);
    }
  }
  db_ = std::make_unique<LmdbWriter>(dir, options.commit_every);
}

TxtDbWriter::~TxtDbWriter() = default;  // LmdbWriter commits what is pending

void TxtDbWriter::CheckOpen() const {
  if (!db_) throw UsageError("txt_db writer used after Close()", dir_);
}

bool TxtDbWriter::Contains(std::string_view key) const {
  CheckOpen();
  return db_->Contains(key);
}

void TxtDbWriter::Put(std::string_view key, const Value& example) {
  CheckOpen();
  db_->Put(key, Lz4FrameCompress(EncodeMsgpack(example)));
}

void TxtDbWriter::PutRaw(std::string_view key, std::string value) {
  CheckOpen();
  db_->Put(key, std::move(value));
}

void TxtDbWriter::Commit() {
  CheckOpen();
  db_->Commit();
}

void TxtDbWriter::WriteJson(const std::string& name, const nlohmann::json& j) {
  CheckOpen();
  WriteJsonFile(dir_ + "/" + name, j);
}

nlohmann::json TxtDbWriter::ReadJson(const std::string& name) const { return ReadJsonFile(dir_ + "/" + name); }

void TxtDbWriter::Close() {
  CheckOpen();
  db_->Close();
  db_.reset();
}

TxtDbReader::TxtDbReader(const std::string& dir) : dir_(dir), db_(std::make_unique<LmdbReader>(dir)) {}
TxtDbReader::~TxtDbReader() = default;

std::optional<std::string> TxtDbReader::GetRaw(std::string_view key) const { return db_->Get(key); }

std::optional<Value> TxtDbReader::Get(std::string_view key) const {
  auto raw = db_->Get(key);
  if (!raw) return std::nullopt;
  try {
    return DecodeMsgpack(Lz4FrameDecompress(*raw));
  } catch (const FormatError& e) {
    throw FormatError(e.message(), dir_ + "[" + std::string(key) + "]");
  }
}

std::vector<std::string> TxtDbReader::Keys() const { return db_->Keys(); }
size_t TxtDbReader::size() const { return db_->Count(); }
nlohmann::json TxtDbReader::ReadJson(const std::string& name) const { return ReadJsonFile(dir_ + "/" + name); }

}  // namespace uniter::featdb

#include "extractor/outputs.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "common/error.h"
#include "featdb/array.h"
#include "featdb/img_db.h"
#include "featdb/npy.h"

namespace uniter::extractor {
namespace {

namespace fs = std::filesystem;

featdb::Array Ints(std::string name, const std::vector<int32_t>& v) {
  featdb::Array x;
  x.name = std::move(name);
  x.dtype = featdb::DType::kInt32;
  x.shape = {static_cast<int64_t>(v.size())};
  x.data.assign(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(int32_t));
  return x;
}

// The arrays of one image, float32, every selected row. convert_imgdir.py
// accepts only 1-d and 2-d arrays, hence image_h/image_w as [1].
std::vector<featdb::Array> ToArrays(const RegionFeatures& r) {
  using featdb::Array;
  const int64_t n = r.num_boxes;
  std::vector<Array> a;
  a.push_back(Array::FromFloat32("features", {n, r.feature_dim}, r.features));
  a.push_back(Array::FromFloat32("norm_bb", {n, 6}, r.norm_bb));
  a.push_back(Array::FromFloat32("conf", {n}, r.conf));
  a.push_back(Array::FromFloat32("soft_labels", {n, r.num_classes}, r.soft_labels));
  a.push_back(Array::FromFloat32("boxes", {n, 4}, r.boxes));
  a.push_back(Ints("objects_id", r.object_ids));
  a.push_back(Array::FromFloat32("objects_conf", {n}, r.object_conf));
  if (!r.attr_ids.empty()) {
    a.push_back(Ints("attrs_id", r.attr_ids));
    a.push_back(Array::FromFloat32("attrs_conf", {n}, r.attr_conf));
  }
  a.push_back(Ints("image_h", {r.image_height}));
  a.push_back(Ints("image_w", {r.image_width}));
  return a;
}

class ImgDbSink : public FeatureSink {
 public:
  explicit ImgDbSink(const SinkOptions& o) : suffix_(o.key_suffix) {
    db_.codec = featdb::CodecFromName(o.codec);
    db_.conf_th = o.conf_th;
    db_.max_bb = o.max_bb;
    db_.min_bb = o.min_bb;
    db_.keep_all = o.keep_all;
    db_.resume = o.resume;
    db_.force = o.force;
    writer_ = std::make_unique<featdb::ImgDbWriter>(o.out, db_);
  }
  bool Contains(const std::string& id) const override { return writer_->Contains(id + suffix_); }
  EncodedImage Encode(const std::string& id, const RegionFeatures& r) const override {
    const featdb::PreparedRecord rec = featdb::PrepareImgRecord(ToArrays(r), db_);
    return {id, featdb::EncodeImgRecord(rec.arrays, db_.codec, db_), rec.nbb};
  }
  void Write(EncodedImage image) override { writer_->PutEncoded(image.id + suffix_, std::move(image.bytes), image.nbb); }
  void Close() override { writer_->Close(); }
  const std::string& path() const override { return writer_->db_path(); }
  std::string DefaultRejectsPath() const override { return writer_->db_path() + ".rejects.jsonl"; }

 private:
  std::string suffix_;
  featdb::ImgDbOptions db_;
  std::unique_ptr<featdb::ImgDbWriter> writer_;
};

void WriteAll(std::FILE* f, const std::string& bytes, const std::string& where) {
  if (std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() || std::fflush(f) != 0)
    ThrowErrno("write failed", where);
}

class NpzSink : public FeatureSink {
 public:
  explicit NpzSink(const SinkOptions& o) : dir_(o.out), shard_tag_(o.shard_tag) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) throw IoError("cannot create the folder: " + ec.message(), dir_);
  }
  bool Contains(const std::string& id) const override { return fs::exists(File(id)); }
  EncodedImage Encode(const std::string& id, const RegionFeatures& r) const override {
    return {id, featdb::WriteNpz(ToArrays(r), /*compress=*/true), 0};
  }
  // A hidden temp file renamed into place: a crash leaves either the whole
  // .npz or none (pack and convert_imgdir.py glob *.npz and never see temps).
  void Write(EncodedImage image) override {
    const std::string final_path = File(image.id);
    const std::string tmp = dir_ + "/." + image.id + ".npz.tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) ThrowErrno("cannot create", tmp);
    try {
      WriteAll(f, image.bytes, tmp);
      if (::fsync(fileno(f)) != 0) ThrowErrno("fsync failed", tmp);
    } catch (...) {
      std::fclose(f);
      throw;
    }
    if (std::fclose(f) != 0) ThrowErrno("close failed", tmp);
    if (std::rename(tmp.c_str(), final_path.c_str()) != 0) ThrowErrno("rename failed", final_path);
  }
  void Close() override {}
  const std::string& path() const override { return dir_; }
  std::string DefaultRejectsPath() const override { return dir_ + "/extract" + shard_tag_ + ".rejects.jsonl"; }

 private:
  std::string File(const std::string& id) const { return dir_ + "/" + id + ".npz"; }
  std::string dir_, shard_tag_;
};

std::string Base64(const void* data, size_t n) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = static_cast<const uint8_t*>(data);
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], kAlphabet[v & 63]};
  }
  if (n - i == 1) {
    const uint32_t v = uint32_t{p[i]} << 16;
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], '=', '='};
  } else if (n - i == 2) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8);
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], '='};
  }
  return out;
}

template <typename T>
std::string Base64Of(const std::vector<T>& v) {
  return Base64(v.data(), v.size() * sizeof(T));
}

class TsvSink : public FeatureSink {
 public:
  explicit TsvSink(const SinkOptions& o) : path_(o.out) {
    std::error_code ec;
    const fs::path parent = fs::path(path_).parent_path();
    if (!parent.empty()) fs::create_directories(parent, ec);
    const bool exists = fs::exists(path_) && fs::file_size(path_) > 0;
    if (exists && !o.resume && !o.force)
      throw UsageError("the TSV exists: pass --resume to continue it or --force to start over", path_);
    if (exists && o.resume) LoadIds();
    f_ = std::fopen(path_.c_str(), o.resume ? "ab" : "wb");
    if (!f_) ThrowErrno("cannot open for writing", path_);
  }
  ~TsvSink() override {
    if (f_) std::fclose(f_);
  }
  bool Contains(const std::string& id) const override { return ids_.count(id) > 0; }
  EncodedImage Encode(const std::string& id, const RegionFeatures& r) const override {
    if (id.find_first_of("\t\n") != std::string::npos) throw Error("image id has a tab or newline: " + id);
    const size_t n = static_cast<size_t>(r.num_boxes);
    const std::vector<int64_t> obj_id(r.object_ids.begin(), r.object_ids.end());
    // No attribute head: zeros, so every row has all ten fields.
    std::vector<int64_t> attr_id(n, 0);
    std::vector<float> attr_conf(n, 0.f);
    if (!r.attr_ids.empty()) {
      attr_id.assign(r.attr_ids.begin(), r.attr_ids.end());
      attr_conf = r.attr_conf;
    }
    std::string line = id + '\t' + std::to_string(r.image_height) + '\t' + std::to_string(r.image_width) + '\t' +
                       Base64Of(obj_id) + '\t' + Base64Of(r.object_conf) + '\t' + Base64Of(attr_id) + '\t' +
                       Base64Of(attr_conf) + '\t' + std::to_string(n) + '\t' + Base64Of(r.boxes) + '\t' +
                       Base64Of(r.features) + '\n';
    return {id, std::move(line), 0};
  }
  // One flushed line per image: a crash tears at most the last line.
  void Write(EncodedImage image) override { WriteAll(f_, image.bytes, path_); }
  void Close() override {
    if (f_ && std::fclose(f_) != 0) {
      f_ = nullptr;
      ThrowErrno("close failed", path_);
    }
    f_ = nullptr;
  }
  const std::string& path() const override { return path_; }
  std::string DefaultRejectsPath() const override { return path_ + ".rejects.jsonl"; }

 private:
  // The ids of the whole lines; a torn last line (no newline) is cut off.
  void LoadIds() {
    std::ifstream in(path_, std::ios::binary);
    if (!in) ThrowErrno("cannot read", path_);
    uint64_t whole = 0;
    std::string line;
    while (std::getline(in, line)) {
      if (in.eof()) break;  // no trailing newline: torn
      ids_.insert(line.substr(0, line.find('\t')));
      whole += line.size() + 1;
    }
    in.close();
    if (whole != fs::file_size(path_)) fs::resize_file(path_, whole);
  }

  std::string path_;
  std::set<std::string> ids_;
  std::FILE* f_ = nullptr;
};

}  // namespace

OutputFormat OutputFormatFromName(const std::string& name) {
  if (name == "img_db") return OutputFormat::kImgDb;
  if (name == "npz") return OutputFormat::kNpz;
  if (name == "tsv") return OutputFormat::kTsv;
  throw UsageError("--format must be img_db, npz or tsv, got '" + name + "'");
}

const char* OutputFormatName(OutputFormat f) {
  switch (f) {
    case OutputFormat::kImgDb: return "img_db";
    case OutputFormat::kNpz: return "npz";
    case OutputFormat::kTsv: return "tsv";
  }
  return "?";
}

std::unique_ptr<FeatureSink> MakeSink(const SinkOptions& o) {
  if (o.out.empty()) throw UsageError("extract needs --out");
  switch (o.format) {
    case OutputFormat::kImgDb: return std::make_unique<ImgDbSink>(o);
    case OutputFormat::kNpz: return std::make_unique<NpzSink>(o);
    case OutputFormat::kTsv: return std::make_unique<TsvSink>(o);
  }
  throw UsageError("unknown output format");
}

}  // namespace uniter::extractor

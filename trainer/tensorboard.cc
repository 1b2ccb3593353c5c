#include "trainer/tensorboard.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "featdb/codecs.h"
#include "trainer/tb_event.pb.h"

namespace uniter::trainer {
namespace {

constexpr size_t kFlushBytes = 64 << 10;

double WallTime() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

void AppendLittleEndian(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t ReadLittleEndian(std::string_view in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(in[at + i]);
  return v;
}

// Adds the scalar records of one file to `by_tag` (tag -> step -> value).
void ReadEventFile(const std::string& path, std::map<std::string, std::map<int64_t, double>>& by_tag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open the events file", path);
  std::ostringstream text;
  text << in.rdbuf();
  const std::string bytes = text.str();
  const std::string_view all(bytes);
  for (size_t at = 0; at + 12 <= all.size();) {
    const uint64_t length = ReadLittleEndian(all, at, 8);
    if (ReadLittleEndian(all, at + 8, 4) != MaskedCrc32c(all.substr(at, 8))) break;
    if (length > all.size() - at - 16) break;
    const std::string_view data = all.substr(at + 12, length);
    if (ReadLittleEndian(all, at + 12 + length, 4) != MaskedCrc32c(data)) break;
    at += 16 + length;
    tb::Event event;
    if (!event.ParseFromArray(data.data(), static_cast<int>(data.size()))) break;
    if (!event.has_summary()) continue;
    for (const tb::SummaryValue& v : event.summary().value())
      if (v.value_case() == tb::SummaryValue::kSimpleValue) by_tag[v.tag()][event.step()] = v.simple_value();
  }
}

}  // namespace

std::map<std::string, std::vector<ScalarPoint>> ReadScalars(const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().filename().string().starts_with("events.out.tfevents.")) files.push_back(e.path().string());
  if (ec) throw IoError("cannot list the log folder: " + ec.message(), dir);
  std::sort(files.begin(), files.end());
  std::map<std::string, std::map<int64_t, double>> by_tag;
  for (const std::string& f : files) ReadEventFile(f, by_tag);
  std::map<std::string, std::vector<ScalarPoint>> out;
  for (const auto& [tag, points] : by_tag)
    for (const auto& [step, value] : points) out[tag].push_back({step, value});
  return out;
}

uint32_t MaskedCrc32c(std::string_view data) {
  const uint32_t crc = featdb::Crc32c(data);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

EventWriter::EventWriter(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw IoError("cannot create the log folder: " + ec.message(), dir);
  const auto seconds = static_cast<int64_t>(WallTime());
  // Two writers started in the same second must not share a file.
  for (int attempt = 0;; ++attempt) {
    path_ = dir + "/events.out.tfevents." + std::to_string(seconds) + "." + HostName();
    if (attempt) path_.append(".").append(std::to_string(attempt));
    file_ = std::fopen(path_.c_str(), "wbx");
    if (file_ || errno != EEXIST) break;
  }
  if (!file_) throw IoError(std::string("cannot create: ") + std::strerror(errno), path_);
  tb::Event header;
  header.set_wall_time(WallTime());
  header.set_file_version("brain.Event:2");
  WriteRecord(header.SerializeAsString());
  Flush();
}

EventWriter::~EventWriter() {
  if (!file_) return;
  try {
    Flush();
  } catch (const std::exception&) {
    // A destructor cannot report; Flush() callers see the error.
  }
  std::fclose(file_);
}

void EventWriter::AddScalar(std::string_view tag, double value, int64_t step) {
  tb::Event event;
  event.set_wall_time(WallTime());
  event.set_step(step);
  tb::SummaryValue* v = event.mutable_summary()->add_value();
  v->set_tag(std::string(tag));
  v->set_simple_value(static_cast<float>(value));
  WriteRecord(event.SerializeAsString());
  if (buffer_.size() >= kFlushBytes) Flush();
}

void EventWriter::WriteRecord(const std::string& data) {
  std::string length;
  AppendLittleEndian(length, data.size(), 8);
  buffer_ += length;
  AppendLittleEndian(buffer_, MaskedCrc32c(length), 4);
  buffer_ += data;
  AppendLittleEndian(buffer_, MaskedCrc32c(data), 4);
}

void EventWriter::Flush() {
  if (buffer_.empty()) return;
  if (std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size() || std::fflush(file_) != 0) {
    throw IoError(std::string("cannot write: ") + std::strerror(errno), path_);
  }
  buffer_.clear();
}

}  // namespace uniter::trainer

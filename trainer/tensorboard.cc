#include "trainer/tensorboard.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

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

}  // namespace

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

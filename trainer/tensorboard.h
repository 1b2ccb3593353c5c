// TensorBoard event files, as UNITER's tensorboardX SummaryWriter writes them:
// `<dir>/events.out.tfevents.<unix seconds>.<hostname>`, a file_version event
// ("brain.Event:2") first, then one Event per scalar. Each event is a TFRecord:
//   uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)
// (little endian; mask = rotate right 15 + 0xa282ead8), which TensorBoard's
// reader checks.
//
// Not thread safe. Records reach the OS at Flush() (and every 64 KiB); a crash
// loses at most the unflushed tail, never a record already flushed.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace uniter::trainer {

class EventWriter {
 public:
  // Creates `dir` if needed and a new events file in it (a resumed run adds a
  // second file beside the first, as tensorboardX does; TensorBoard reads the
  // folder). Throws IoError when the file cannot be created.
  explicit EventWriter(const std::string& dir);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // Logs `value` under `tag` at `step` (wall time: now).
  void AddScalar(std::string_view tag, double value, int64_t step);
  // Pushes buffered records to the OS. Throws IoError on a write error.
  void Flush();

  const std::string& path() const { return path_; }

 private:
  void WriteRecord(const std::string& data);

  std::string path_;
  std::FILE* file_ = nullptr;
  std::string buffer_;
};

// One scalar as read back from an event file.
struct ScalarPoint {
  int64_t step = 0;
  double value = 0;  // the stored float32, widened
};

// The scalars of every events.out.tfevents.* file in `dir`, by tag, sorted by
// step. Files are read in name order (their creation second), a later file's
// point replacing an earlier one's at the same step: a resumed run logs the
// steps after its checkpoint again, and the second run's values are the ones
// its checkpoints hold. A record whose length or CRC does not check out ends
// that file (the unflushed tail of a killed run). Throws IoError when `dir`
// cannot be read.
std::map<std::string, std::vector<ScalarPoint>> ReadScalars(const std::string& dir);

// TFRecord's checksum: CRC-32C rotated right by 15 bits plus 0xa282ead8.
uint32_t MaskedCrc32c(std::string_view data);

}  // namespace uniter::trainer

#include "featdb/native_pb.h"

#include <google/protobuf/arena.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include "common/error.h"
#include "featdb/codecs.h"
#include "featdb/internal/native_wire.h"
#include "featdb/native_record.pb.h"

namespace uniter::featdb {

namespace {

namespace pb = google::protobuf;

constexpr uint32_t kMagicValue = 0x31524e55;  // "UNR1" little-endian

[[noreturn]] void Corrupt(const std::string& what) { throw FormatError("corrupt native record: " + what); }

// The NativeEnvelope's record field, aliased into `bytes`.
std::string_view EnvelopeRecord(std::string_view bytes) {
  pb::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()), static_cast<int>(bytes.size()));
  std::string_view record;
  bool has_record = false;
  uint32_t magic = 0;
  while (const uint32_t tag = in.ReadTag()) {
    const int field = static_cast<int>(pb::internal::WireFormatLite::GetTagFieldNumber(tag));
    if (field == 1 && (tag & 7) == 2) {
      uint32_t len = 0;
      if (!in.ReadVarint32(&len) || len > bytes.size() - static_cast<size_t>(in.CurrentPosition()))
        Corrupt("bad record length");
      record = bytes.substr(static_cast<size_t>(in.CurrentPosition()), len);
      has_record = true;
      in.Skip(static_cast<int>(len));
    } else if (field == 3 && (tag & 7) == 5) {
      if (!in.ReadLittleEndian32(&magic)) Corrupt("truncated magic");
    } else if (!pb::internal::WireFormatLite::SkipField(&in, tag)) {
      Corrupt("bad envelope field " + std::to_string(field));
    }
  }
  if (!in.ConsumedEntireMessage() || static_cast<size_t>(in.CurrentPosition()) != bytes.size())
    Corrupt("envelope does not parse");
  if (magic != kMagicValue) Corrupt("bad magic");
  if (!has_record) Corrupt("missing record field");
  return record;
}

const proto::NativeRecord& ParseRecord(std::string_view bytes, pb::Arena& arena) {
  const std::string_view record = EnvelopeRecord(bytes);
  auto* rec = pb::Arena::CreateMessage<proto::NativeRecord>(&arena);
  if (!rec->ParseFromArray(record.data(), static_cast<int>(record.size()))) Corrupt("record does not parse");
  if (rec->format_version() != 1)
    throw FormatError("native record format version " + std::to_string(rec->format_version()) + " is not supported");
  return *rec;
}

}  // namespace

std::vector<Array> DecodeNativePb(std::string_view bytes, const std::vector<std::string>& only) {
  thread_local pb::Arena arena;
  arena.Reset();
  const proto::NativeRecord& rec = ParseRecord(bytes, arena);
  std::vector<internal::WireArray> wire(static_cast<size_t>(rec.arrays_size()));
  for (int i = 0; i < rec.arrays_size(); ++i) {
    const proto::NativeArray& a = rec.arrays(i);
    internal::WireArray& w = wire[static_cast<size_t>(i)];
    w.name = a.name();
    w.dtype = static_cast<uint64_t>(a.dtype());
    w.shape.assign(a.shape().begin(), a.shape().end());
    w.compression = static_cast<uint64_t>(a.compression());
    w.filter = static_cast<uint64_t>(a.filter());
    w.raw_size = a.raw_size();
    w.filtered_size = a.filtered_size();
    w.payload = a.payload();
    w.payload_crc = a.payload_crc32c();
    w.has_crc = true;  // proto3 fixed32 has no presence; a missing CRC reads 0 and fails the check
  }
  return internal::DecodeWireArrays(wire, only);
}

}  // namespace uniter::featdb

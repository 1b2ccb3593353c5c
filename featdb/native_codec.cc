// The native img_db record (featdb/codecs.h, featdb/native_record.proto).
//
// Stored bytes are a NativeEnvelope written field by field so that the magic
// comes first (field 3, then 1, then 2: still valid protobuf wire format):
//   0x1d "UNR1" | 0x0a varint(len) NativeRecord | 0x15 crc32c(record metadata)
// and each NativeArray carries the CRC-32C of its own payload.
// fp16 features of post-ReLU activations are mostly zeros and small values;
// splitting each element's bytes into planes (shuffle) puts the zero-heavy high
// bytes together, which LZ4/zstd compress far better than interleaved ones.
#include <lz4.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "common/error.h"
#include "featdb/codecs.h"
#include "featdb/internal/native_wire.h"

namespace uniter::featdb {

using internal::WireArray;

namespace {

constexpr char kMagic[5] = {0x1d, 'U', 'N', 'R', '1'};
constexpr uint32_t kFormatVersion = 1;

uint32_t Crc32cTable(uint32_t crc, const uint8_t* p, size_t n) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t Crc32cHw(uint32_t crc, const uint8_t* p, size_t n) {
  uint64_t c = crc;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    c = _mm_crc32_u64(c, v);
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  for (; i < n; ++i) c32 = _mm_crc32_u8(c32, p[i]);
  return c32;
}
#endif

void Shuffle(const char* in, char* out, size_t n_elems, size_t width) {
  for (size_t b = 0; b < width; ++b) {
    char* plane = out + b * n_elems;
    for (size_t i = 0; i < n_elems; ++i) plane[i] = in[i * width + b];
  }
}

void Unshuffle(const char* in, char* out, size_t n_elems, size_t width) {
  if (width == 2) {
    const uint8_t* lo = reinterpret_cast<const uint8_t*>(in);
    const uint8_t* hi = lo + n_elems;
    uint8_t* o = reinterpret_cast<uint8_t*>(out);
    for (size_t i = 0; i < n_elems; ++i) {
      o[2 * i] = lo[i];
      o[2 * i + 1] = hi[i];
    }
    return;
  }
  for (size_t b = 0; b < width; ++b) {
    const char* plane = in + b * n_elems;
    for (size_t i = 0; i < n_elems; ++i) out[i * width + b] = plane[i];
  }
}

void PutVarint(std::string& s, uint64_t v) {
  while (v >= 0x80) {
    s.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  s.push_back(static_cast<char>(v));
}

[[noreturn]] void Corrupt(const std::string& what) { throw FormatError("corrupt native record: " + what); }

struct Envelope {
  std::string_view record;  // the NativeRecord bytes
  uint32_t crc = 0;         // CRC-32C of the record's bytes outside the payloads
};

// Splits the envelope (the checksum is checked by CheckRecord, after parsing).
Envelope OpenEnvelope(std::string_view b) {
  if (!IsNative(b)) Corrupt("bad magic");
  size_t pos = 5;
  if (pos >= b.size() || static_cast<uint8_t>(b[pos]) != 0x0a) Corrupt("missing record field");
  ++pos;
  uint64_t len = 0;
  for (int shift = 0;; shift += 7) {
    if (pos >= b.size() || shift > 56) Corrupt("bad length");
    const uint8_t c = static_cast<uint8_t>(b[pos++]);
    len |= static_cast<uint64_t>(c & 0x7f) << shift;
    if (!(c & 0x80)) break;
  }
  if (len > b.size() - pos || b.size() - pos - len != 5) Corrupt("length does not match the value size");
  Envelope e;
  e.record = b.substr(pos, len);
  pos += len;
  if (static_cast<uint8_t>(b[pos]) != 0x15) Corrupt("missing checksum field");
  std::memcpy(&e.crc, b.data() + pos + 1, 4);
  return e;
}

}  // namespace

uint32_t Crc32cExtend(uint32_t crc, std::string_view data) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(data.data());
#if defined(__x86_64__)
  static const bool hw = __builtin_cpu_supports("sse4.2");
  if (hw) return ~Crc32cHw(~crc, p, data.size());
#endif
  return ~Crc32cTable(~crc, p, data.size());
}

uint32_t Crc32c(std::string_view data) { return Crc32cExtend(0, data); }

bool IsNative(std::string_view b) { return b.size() >= 5 && std::memcmp(b.data(), kMagic, 5) == 0; }

namespace {

// Protobuf wire format, by hand: the record is small and fixed (see
// native_record.proto), and libprotobuf cannot share a process with Debian's
// libsentencepiece, which exports its own bundled protobuf symbols.
enum Compression : uint32_t { kNone = 0, kLz4 = 1, kZstd = 2 };
enum Filter : uint32_t { kNoFilter = 0, kByteShuffle = 1, kZeroMaskShuffle = 2 };

void PutTag(std::string& s, int field, int wire) { PutVarint(s, static_cast<uint64_t>(field) << 3 | wire); }
void PutBytesField(std::string& s, int field, std::string_view b) {
  PutTag(s, field, 2);
  PutVarint(s, b.size());
  s.append(b);
}
void PutVarintField(std::string& s, int field, uint64_t v) {
  if (v == 0) return;  // proto3 leaves defaults out
  PutTag(s, field, 0);
  PutVarint(s, v);
}

class WireReader {
 public:
  explicit WireReader(std::string_view b) : b_(b) {}
  bool done() const { return pos_ >= b_.size(); }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= b_.size()) Corrupt("truncated varint");
      const uint8_t c = static_cast<uint8_t>(b_[pos_++]);
      v |= static_cast<uint64_t>(c & 0x7f) << shift;
      if (!(c & 0x80)) return v;
    }
    Corrupt("varint longer than 10 bytes");
  }
  std::string_view Bytes() {
    const uint64_t n = Varint();
    if (n > b_.size() - pos_) Corrupt("field length exceeds the record");
    std::string_view s = b_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  uint32_t Fixed32() {
    if (4 > b_.size() - pos_) Corrupt("truncated field");
    uint32_t v;
    std::memcpy(&v, b_.data() + pos_, 4);
    pos_ += 4;
    return v;
  }
  // Skips a field of an unknown number (forward compatibility).
  void Skip(int wire) {
    switch (wire) {
      case 0: Varint(); break;
      case 1: Advance(8); break;
      case 2: Bytes(); break;
      case 5: Advance(4); break;
      default: Corrupt("bad wire type " + std::to_string(wire));
    }
  }

 private:
  void Advance(size_t n) {
    if (n > b_.size() - pos_) Corrupt("truncated field");
    pos_ += n;
  }
  std::string_view b_;
  size_t pos_ = 0;
};

WireArray ParseArray(std::string_view b) {
  WireArray a;
  WireReader r(b);
  while (!r.done()) {
    const uint64_t tag = r.Varint();
    const int field = static_cast<int>(tag >> 3), wire = static_cast<int>(tag & 7);
    auto want = [&](int w) {
      if (wire != w) Corrupt("field " + std::to_string(field) + " has wire type " + std::to_string(wire));
    };
    switch (field) {
      case 1: want(2); a.name = r.Bytes(); break;
      case 2: want(0); a.dtype = r.Varint(); break;
      case 3:
        if (wire == 2) {  // packed
          WireReader p(r.Bytes());
          while (!p.done()) a.shape.push_back(static_cast<int64_t>(p.Varint()));
        } else {
          want(0);
          a.shape.push_back(static_cast<int64_t>(r.Varint()));
        }
        if (a.shape.size() > 32) Corrupt("more than 32 dimensions");
        break;
      case 4: want(0); a.compression = r.Varint(); break;
      case 5: want(0); a.filter = r.Varint(); break;
      case 6: want(0); a.raw_size = r.Varint(); break;
      case 7: want(2); a.payload = r.Bytes(); break;
      case 8: want(0); a.filtered_size = r.Varint(); break;
      case 9: want(5); a.payload_crc = r.Fixed32(); a.has_crc = true; break;
      default: r.Skip(wire);
    }
  }
  return a;
}

// NativeRecord → its arrays (views into `body`).
std::vector<WireArray> ParseRecord(std::string_view body) {
  WireReader r(body);
  uint64_t version = 0;
  std::vector<WireArray> arrays;
  while (!r.done()) {
    const uint64_t tag = r.Varint();
    const int field = static_cast<int>(tag >> 3), wire = static_cast<int>(tag & 7);
    if (field == 1 && wire == 0) version = r.Varint();
    else if (field == 2 && wire == 2) arrays.push_back(ParseArray(r.Bytes()));
    else if (field == 1 || field == 2) Corrupt("bad wire type for field " + std::to_string(field));
    else r.Skip(wire);
  }
  if (version != kFormatVersion)
    throw FormatError("native record format version " + std::to_string(version) +
                      " is not supported (this build reads version 1)");
  return arrays;
}

// CRC-32C of the record's bytes with every payload's contents left out: the
// metadata (names, dtypes, shapes, sizes, payload CRCs, framing). Each payload
// has its own CRC, checked when that array is decoded, so reading `features`
// does not hash `soft_labels`. Together they cover every byte.
uint32_t MetadataCrc(std::string_view body, const std::vector<WireArray>& arrays) {
  uint32_t crc = 0;
  const char* pos = body.data();
  for (const WireArray& a : arrays) {
    if (a.payload.data() == nullptr) continue;  // no payload field: all metadata
    // Payload views point into `body`, in order; anything else is a malformed record.
    if (a.payload.data() < pos || a.payload.data() + a.payload.size() > body.data() + body.size())
      Corrupt("payloads out of order");
    crc = Crc32cExtend(crc, std::string_view(pos, static_cast<size_t>(a.payload.data() - pos)));
    pos = a.payload.data() + a.payload.size();
  }
  return Crc32cExtend(crc, std::string_view(pos, static_cast<size_t>(body.data() + body.size() - pos)));
}

// Parses and checks the metadata checksum.
std::vector<WireArray> OpenRecord(std::string_view bytes) {
  const Envelope e = OpenEnvelope(bytes);
  std::vector<WireArray> arrays = ParseRecord(e.record);
  const uint32_t actual = MetadataCrc(e.record, arrays);
  if (actual != e.crc) Corrupt("checksum mismatch (stored " + std::to_string(e.crc) + ", computed " + std::to_string(actual) + ")");
  return arrays;
}

const char* CompressionName(uint64_t c) { return c == kLz4 ? "lz4" : c == kZstd ? "zstd" : c == kNone ? "none" : "?"; }

}  // namespace

namespace {

// Zero-mask filter: a bitmap of the non-zero elements (LSB first), then the
// non-zero elements byte-shuffled. Post-ReLU features are mostly exact zeros,
// so this halves what the compressor sees and what the decoder touches.
std::string ZeroMaskShuffle(std::string_view data, size_t width) {
  const size_t n = data.size() / width;
  const size_t mask_bytes = (n + 7) / 8;
  std::string mask(mask_bytes, '\0');
  size_t nnz = 0;
  for (size_t i = 0; i < n; ++i) {
    bool nz = false;
    for (size_t b = 0; b < width; ++b) nz |= data[i * width + b] != 0;
    if (nz) mask[i >> 3] = static_cast<char>(mask[i >> 3] | (1 << (i & 7))), ++nnz;
  }
  std::string out(mask_bytes + nnz * width, '\0');
  std::memcpy(out.data(), mask.data(), mask_bytes);
  char* planes = out.data() + mask_bytes;
  size_t j = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!(mask[i >> 3] & (1 << (i & 7)))) continue;
    for (size_t b = 0; b < width; ++b) planes[b * nnz + j] = data[i * width + b];
    ++j;
  }
  return out;
}

// Scatters the non-zero 2-byte elements (lo and hi byte planes) to their
// positions. The SSSE3 path expands 8 elements per mask byte with one shuffle
// (a branchy bit loop mispredicts on every other element of random masks).
void ExpandHalvesScalar(const uint8_t* mask, size_t n, const uint8_t* lo, const uint8_t* hi, size_t nnz, size_t begin,
                        size_t j, uint16_t* out) {
  for (size_t i = begin; i < n; ++i) {
    const uint32_t bit = (mask[i >> 3] >> (i & 7)) & 1u;
    const size_t k = j < nnz ? j : 0;  // never read past the planes
    out[i] = static_cast<uint16_t>((lo[k] | (hi[k] << 8)) & (0u - bit));
    j += bit;
  }
}

#if defined(__x86_64__)
__attribute__((target("ssse3,popcnt"))) void ExpandHalvesSsse3(const uint8_t* mask, size_t n, const uint8_t* lo,
                                                               const uint8_t* hi, size_t nnz, uint16_t* out) {
  static const auto table = [] {
    std::array<std::array<uint8_t, 16>, 256> t{};
    for (int b = 0; b < 256; ++b) {
      int idx = 0;
      for (int k = 0; k < 8; ++k) {
        if (b & (1 << k)) {
          t[b][2 * k] = static_cast<uint8_t>(2 * idx);
          t[b][2 * k + 1] = static_cast<uint8_t>(2 * idx + 1);
          ++idx;
        } else {
          t[b][2 * k] = t[b][2 * k + 1] = 0x80;
        }
      }
    }
    return t;
  }();
  size_t j = 0, m = 0;
  // 8-byte loads from lo/hi at j need j + 8 <= nnz.
  for (; (m + 1) * 8 <= n && j + 8 <= nnz; ++m) {
    const uint8_t bits = mask[m];
    __m128i r = _mm_setzero_si128();
    if (bits) {
      const __m128i l = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(lo + j));
      const __m128i h = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(hi + j));
      r = _mm_shuffle_epi8(_mm_unpacklo_epi8(l, h), _mm_loadu_si128(reinterpret_cast<const __m128i*>(table[bits].data())));
      j += static_cast<size_t>(_mm_popcnt_u32(bits));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + m * 8), r);
  }
  ExpandHalvesScalar(mask, n, lo, hi, nnz, m * 8, j, out);
}
#endif

void ExpandHalves(const uint8_t* mask, size_t n, const uint8_t* lo, const uint8_t* hi, size_t nnz, uint16_t* out) {
#if defined(__x86_64__)
  static const bool ssse3 = __builtin_cpu_supports("ssse3") && __builtin_cpu_supports("popcnt");
  if (ssse3) return ExpandHalvesSsse3(mask, n, lo, hi, nnz, out);
#endif
  ExpandHalvesScalar(mask, n, lo, hi, nnz, 0, 0, out);
}

// Inverse of ZeroMaskShuffle into `out` (raw bytes, pre-sized to n * width).
void ZeroMaskUnshuffle(std::string_view in, char* out, size_t n, size_t width) {
  const size_t mask_bytes = (n + 7) / 8;
  if (in.size() < mask_bytes) Corrupt("zero mask truncated");
  const uint8_t* mask = reinterpret_cast<const uint8_t*>(in.data());
  // A table, not __builtin_popcount: without -mpopcnt that is a libgcc call per byte.
  static const auto bits_in = [] {
    std::array<uint8_t, 256> t{};
    for (int b = 0; b < 256; ++b) t[b] = static_cast<uint8_t>((b & 1) + ((b >> 1) & 1) + ((b >> 2) & 1) + ((b >> 3) & 1) +
                                                             ((b >> 4) & 1) + ((b >> 5) & 1) + ((b >> 6) & 1) + ((b >> 7) & 1));
    return t;
  }();
  size_t nnz = 0;
  for (size_t i = 0; i < mask_bytes; ++i) nnz += bits_in[mask[i]];
  if ((n & 7) && (mask[mask_bytes - 1] >> (n & 7))) Corrupt("zero mask has bits past the end");
  if (in.size() != mask_bytes + nnz * width) Corrupt("zero mask does not match the payload size");
  const uint8_t* planes = reinterpret_cast<const uint8_t*>(in.data()) + mask_bytes;
  if (width == 2) {
    ExpandHalves(mask, n, planes, planes + nnz, nnz, reinterpret_cast<uint16_t*>(out));
    return;
  }
  size_t j = 0;
  for (size_t i = 0; i < n; ++i) {
    if (mask[i >> 3] & (1u << (i & 7))) {
      for (size_t b = 0; b < width; ++b) out[i * width + b] = static_cast<char>(planes[b * nnz + j]);
      ++j;
    } else {
      std::memset(out + i * width, 0, width);
    }
  }
}

// Arrays the trainer reads for every example; "auto" keeps them on the
// fastest decoder (lz4) and gives the rest (soft_labels, conf, ...) to zstd,
// which is smaller but ~3x slower to decode (bench/featdb).
bool IsHotArray(const std::string& name) { return name == "features" || name == "norm_bb"; }

}  // namespace

std::string EncodeNative(const std::vector<Array>& arrays, const NativeOptions& options) {
  if (options.compression != "auto" && options.compression != "lz4" && options.compression != "zstd" &&
      options.compression != "none")
    throw UsageError("native compression must be auto, lz4, zstd or none, not '" + options.compression + "'");
  std::string body;
  PutVarintField(body, 1, kFormatVersion);
  std::string filtered, packed, msg, dims;
  for (const Array& a : arrays) {
    a.Validate("native encode");
    const Compression method = options.compression == "lz4"    ? kLz4
                               : options.compression == "zstd" ? kZstd
                               : options.compression == "none" ? kNone
                               : IsHotArray(a.name)             ? kLz4
                                                                : kZstd;
    const size_t width = DTypeSize(a.dtype);
    const size_t n = width ? a.data.size() / width : 0;
    std::string_view src = a.data;
    Filter filter = kNoFilter;
    if (a.data.size() >= 64) {
      size_t zeros = 0;
      for (size_t i = 0; i < n; ++i) {
        bool z = true;
        for (size_t b = 0; b < width && z; ++b) z = a.data[i * width + b] == 0;
        zeros += z;
      }
      if (zeros * 4 >= n) {  // ≥25% zeros: the mask pays for itself
        filtered = ZeroMaskShuffle(a.data, width);
        filter = kZeroMaskShuffle;
        src = filtered;
      } else if (width > 1) {
        filtered.resize(a.data.size());
        Shuffle(a.data.data(), filtered.data(), n, width);
        filter = kByteShuffle;
        src = filtered;
      }
    }
    Compression used = kNone;
    std::string_view payload = src;
    if (method == kLz4 && src.size() < (size_t{1} << 30)) {
      packed.resize(LZ4_compressBound(static_cast<int>(src.size())));
      const int c = LZ4_compress_default(src.data(), packed.data(), static_cast<int>(src.size()), static_cast<int>(packed.size()));
      if (c > 0 && static_cast<size_t>(c) < src.size()) used = kLz4, payload = std::string_view(packed.data(), c);
    } else if (method == kZstd) {
      packed.resize(ZSTD_compressBound(src.size()));
      const size_t c = ZSTD_compress(packed.data(), packed.size(), src.data(), src.size(), options.zstd_level);
      if (!ZSTD_isError(c) && c < src.size()) used = kZstd, payload = std::string_view(packed.data(), c);
    }
    msg.clear();
    PutBytesField(msg, 1, a.name);
    PutVarintField(msg, 2, static_cast<uint64_t>(a.dtype));
    dims.clear();
    for (int64_t d : a.shape) PutVarint(dims, static_cast<uint64_t>(d));
    if (!a.shape.empty()) PutBytesField(msg, 3, dims);
    PutVarintField(msg, 4, used);
    PutVarintField(msg, 5, filter);
    PutVarintField(msg, 6, a.data.size());
    PutVarintField(msg, 8, src.size());
    PutBytesField(msg, 7, payload);
    PutTag(msg, 9, 5);
    const uint32_t pcrc = Crc32c(payload);
    for (int i = 0; i < 4; ++i) msg.push_back(static_cast<char>((pcrc >> (8 * i)) & 0xff));
    PutBytesField(body, 2, msg);
  }
  std::string out(kMagic, 5);
  out.push_back(0x0a);
  PutVarint(out, body.size());
  out += body;
  out.push_back(0x15);
  const uint32_t crc = MetadataCrc(body, ParseRecord(body));
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  return out;
}

std::vector<Array> DecodeNative(std::string_view bytes, const std::vector<std::string>& only) {
  return internal::DecodeWireArrays(OpenRecord(bytes), only);
}

namespace {

// What `payload` can decode to under `compression`: stored bytes exactly;
// LZ4 at most 255× (its format's ratio limit); zstd the size its frame header
// records (ZSTD_compress, our writer, always records it).
void CheckDecodedSize(uint64_t compression, std::string_view payload, uint64_t decoded) {
  switch (compression) {
    case kNone:
      if (payload.size() != decoded) Corrupt("stored size mismatch");
      return;
    case kLz4:
      if (decoded > 255 * static_cast<uint64_t>(payload.size()) + 16) Corrupt("lz4 payload too small for its size");
      return;
    case kZstd: {
      const unsigned long long n = ZSTD_getFrameContentSize(payload.data(), payload.size());
      if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN || n != decoded)
        Corrupt("zstd frame does not record its size");
      return;
    }
    default:
      Corrupt("unknown compression " + std::to_string(compression));
  }
}

}  // namespace

std::vector<Array> internal::DecodeWireArrays(const std::vector<WireArray>& wire, const std::vector<std::string>& only) {
  std::vector<Array> out;
  // Reused across calls: a fresh buffer would be zero-filled on every record.
  thread_local std::string tmp;
  for (const WireArray& pa : wire) {
    if (!only.empty() && std::find(only.begin(), only.end(), pa.name) == only.end()) continue;
    Array a;
    a.name = pa.name;
    if (pa.dtype > static_cast<uint64_t>(DType::kBool)) Corrupt("unknown dtype " + std::to_string(pa.dtype));
    a.dtype = static_cast<DType>(pa.dtype);
    for (int64_t d : pa.shape) {
      if (d < 0 || d > (int64_t{1} << 40)) Corrupt("bad dimension");
    }
    a.shape = pa.shape;
    const uint64_t raw = pa.raw_size;
    if (raw > (uint64_t{1} << 32)) Corrupt("array too large");
    if (pa.filter > kZeroMaskShuffle) Corrupt("unknown filter");
    const size_t width = DTypeSize(a.dtype);
    if (raw % width) Corrupt("size is not a multiple of the element size");
    // Bytes the filter produced (what the compressor saw); older writers leave it out.
    const uint64_t filtered = pa.filter == kZeroMaskShuffle ? pa.filtered_size : raw;
    if (filtered > raw + raw / 8 + 8) Corrupt("filtered size exceeds its bound");
    const bool direct = pa.filter == kNoFilter;
    std::string& dst = direct ? a.data : tmp;
    const std::string_view p = pa.payload;
    if (!pa.has_crc) Corrupt("array '" + std::string(pa.name) + "' has no payload checksum");
    if (Crc32c(p) != pa.payload_crc) Corrupt("payload checksum mismatch in array '" + std::string(pa.name) + "'");
    // Declared sizes are checked against the payload before anything is
    // allocated, so a corrupt record cannot make us reserve gigabytes.
    CheckDecodedSize(pa.compression, p, filtered);
    dst.resize(filtered);
    switch (pa.compression) {
      case kNone:
        if (p.size() != filtered) Corrupt("stored size mismatch");
        if (filtered) std::memcpy(dst.data(), p.data(), filtered);
        break;
      case kLz4: {
        const int n = LZ4_decompress_safe(p.data(), dst.data(), static_cast<int>(p.size()), static_cast<int>(filtered));
        if (n < 0 || static_cast<uint64_t>(n) != filtered) Corrupt("lz4 payload does not decode to its size");
        break;
      }
      case kZstd: {
        const size_t n = ZSTD_decompress(dst.data(), filtered, p.data(), p.size());
        if (ZSTD_isError(n) || n != filtered) Corrupt("zstd payload does not decode to its size");
        break;
      }
      default:
        Corrupt("unknown compression " + std::to_string(pa.compression));
    }
    if (pa.filter == kByteShuffle) {
      a.data.resize(raw);
      Unshuffle(tmp.data(), a.data.data(), raw / width, width);
    } else if (pa.filter == kZeroMaskShuffle) {
      a.data.resize(raw);
      ZeroMaskUnshuffle(tmp, a.data.data(), raw / width, width);
    }
    a.Validate("native record");
    out.push_back(std::move(a));
  }
  return out;
}

std::vector<std::string> DescribeNative(std::string_view bytes) {
  std::vector<std::string> out;
  for (const WireArray& a : OpenRecord(bytes)) {
    std::string c = CompressionName(a.compression);
    if (a.filter == kByteShuffle) c += "+shuffle";
    if (a.filter == kZeroMaskShuffle) c += "+zeromask+shuffle";
    out.push_back(std::string(a.name) + ":" + c);
  }
  return out;
}

}  // namespace uniter::featdb

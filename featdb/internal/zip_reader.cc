#include "featdb/internal/zip_reader.h"

#include <zlib.h>
#ifdef UNITER_HAVE_LIBDEFLATE
#include <libdeflate.h>
#endif

#include <cstring>
#include <memory>

#include "common/error.h"

namespace uniter::featdb::internal {
namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50, kZip64LocatorSig = 0x07064b50;
constexpr size_t kLocalLen = 30, kCentralLen = 46, kEndLen = 22, kZip64EndLen = 56, kZip64LocatorLen = 20;

uint16_t U16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>(u[0] | (u[1] << 8));
}
uint32_t U32(const char* p) { return U16(p) | (static_cast<uint32_t>(U16(p + 2)) << 16); }
uint64_t U64(const char* p) { return U32(p) | (static_cast<uint64_t>(U32(p + 4)) << 32); }

[[noreturn]] void Bad(const std::string& what, const std::string& where) {
  throw FormatError("not a valid .npz (zip): " + what, where);
}

// True when [off, off + len) lies inside a buffer of `size` bytes (no overflow).
bool Inside(uint64_t off, uint64_t len, uint64_t size) { return off <= size && len <= size - off; }

struct EndRecord {
  uint64_t entries = 0, cd_size = 0, cd_offset = 0;
};

EndRecord FindEnd(std::string_view z, const std::string& where) {
  if (z.size() < kEndLen) Bad("only " + std::to_string(z.size()) + " bytes", where);
  // The end record is the last thing in the file but for a comment of up to 64 KiB.
  size_t pos = z.size() - kEndLen;
  const size_t stop = pos > 0xffff ? pos - 0xffff : 0;
  while (true) {
    if (U32(z.data() + pos) == kEndSig && pos + kEndLen + U16(z.data() + pos + 20) == z.size()) break;
    if (pos == stop) Bad("no end of central directory record", where);
    --pos;
  }
  const char* e = z.data() + pos;
  if (U16(e + 4) != 0 || U16(e + 6) != 0 || U16(e + 8) != U16(e + 10)) Bad("multi-disk archives are not supported", where);
  EndRecord r{U16(e + 10), U32(e + 12), U32(e + 16)};
  // zip64: a locator right before the end record points at the zip64 end record.
  if (pos >= kZip64LocatorLen && U32(e - kZip64LocatorLen) == kZip64LocatorSig) {
    const char* loc = e - kZip64LocatorLen;
    const uint64_t off = U64(loc + 8);
    if (U32(loc + 4) != 0 || U32(loc + 16) > 1) Bad("multi-disk archives are not supported", where);
    if (!Inside(off, kZip64EndLen, pos - kZip64LocatorLen) || U32(z.data() + off) != kZip64EndSig)
      Bad("bad zip64 end of central directory record", where);
    const char* e64 = z.data() + off;
    if (U32(e64 + 16) != 0 || U32(e64 + 20) != 0 || U64(e64 + 24) != U64(e64 + 32))
      Bad("multi-disk archives are not supported", where);
    r = {U64(e64 + 32), U64(e64 + 40), U64(e64 + 48)};
  }
  if (!Inside(r.cd_offset, r.cd_size, z.size())) Bad("central directory outside the file", where);
  if (r.entries > r.cd_size / kCentralLen) Bad("central directory claims more entries than it holds", where);
  return r;
}

}  // namespace

std::vector<ZipMember> ListZipMembers(std::string_view z, const std::string& where) {
  const EndRecord end = FindEnd(z, where);
  std::vector<ZipMember> out;
  out.reserve(end.entries);
  const char* cd = z.data() + end.cd_offset;
  uint64_t at = 0;
  for (uint64_t i = 0; i < end.entries; ++i) {
    // Messages are built only on failure: this loop runs for every record read.
    auto entry = [i] { return "central directory entry " + std::to_string(i); };
    if (!Inside(at, kCentralLen, end.cd_size) || U32(cd + at) != kCentralSig) Bad("bad " + entry(), where);
    const char* h = cd + at;
    const uint16_t flags = U16(h + 8), method = U16(h + 10);
    uint64_t comp = U32(h + 20), size = U32(h + 24), local = U32(h + 42);
    const uint16_t name_len = U16(h + 28), extra_len = U16(h + 30), comment_len = U16(h + 32);
    const uint64_t var_len = uint64_t{name_len} + extra_len + comment_len;
    if (!Inside(at + kCentralLen, var_len, end.cd_size)) Bad(entry() + " runs past the central directory", where);
    const std::string_view name(h + kCentralLen, name_len);
    auto member = [name] { return "member '" + std::string(name) + "'"; };
    // The zip64 extra field holds, in this order, just the fields saturated above.
    const char* x = h + kCentralLen + name_len;
    for (size_t xp = 0; xp + 4 <= extra_len;) {
      const uint16_t id = U16(x + xp), len = U16(x + xp + 2);
      if (xp + 4 + len > extra_len) Bad(member() + ": bad extra field", where);
      if (id == 1) {
        const char* f = x + xp + 4;
        size_t fp = 0;
        for (uint64_t* v : {&size, &comp, &local}) {
          if (*v != 0xffffffffu) continue;
          if (fp + 8 > len) Bad(member() + ": short zip64 extra field", where);
          *v = U64(f + fp);
          fp += 8;
        }
      }
      xp += 4 + len;
    }
    if (U16(h + 34) != 0) Bad(member() + " is on another disk", where);
    if (flags & 1) Bad(member() + " is encrypted", where);
    if (method != 0 && method != 8) Bad(member() + " uses compression method " + std::to_string(method) + " (only stored and deflate)", where);
    // The local header: its own name and extra lengths decide where the data starts.
    if (!Inside(local, kLocalLen, z.size()) || U32(z.data() + local) != kLocalSig) Bad(member() + ": bad local header", where);
    const char* l = z.data() + local;
    const uint64_t data_at = local + kLocalLen + U16(l + 26) + U16(l + 28);
    if (!Inside(local + kLocalLen, uint64_t{U16(l + 26)} + U16(l + 28), z.size()) || U16(l + 26) != name_len ||
        std::memcmp(l + kLocalLen, name.data(), name_len) != 0)
      Bad(member() + ": local header does not match the central directory", where);
    if (!Inside(data_at, comp, z.size())) Bad(member() + " claims " + std::to_string(comp) + " compressed bytes past the end of the file", where);
    if (method == 0 && comp != size) Bad(member() + " is stored but its sizes differ", where);
    // Deflate expands at most ~1032:1.
    if (size > (uint64_t{1} << 32) || size > comp * 1100 + 4096)
      Bad(member() + " claims an implausible size (" + std::to_string(size) + " bytes)", where);
    out.push_back({name, method, U32(h + 16), size, z.substr(data_at, comp)});
    at += kCentralLen + var_len;
  }
  return out;
}

InflateBackend DefaultInflateBackend() {
#ifdef UNITER_HAVE_LIBDEFLATE
  return InflateBackend::kLibdeflate;
#else
  return InflateBackend::kZlib;
#endif
}

bool HaveInflateBackend(InflateBackend b) {
#ifdef UNITER_HAVE_LIBDEFLATE
  if (b == InflateBackend::kLibdeflate) return true;
#endif
  return b == InflateBackend::kZlib;
}

bool InflateRaw(std::string_view in, char* out, size_t out_size, InflateBackend b) {
#ifdef UNITER_HAVE_LIBDEFLATE
  if (b == InflateBackend::kLibdeflate) {
    // One decompressor per thread: allocating it costs more than a small member.
    thread_local std::unique_ptr<libdeflate_decompressor, void (*)(libdeflate_decompressor*)> d(
        libdeflate_alloc_decompressor(), libdeflate_free_decompressor);
    if (!d) throw Error("libdeflate: out of memory");
    // A null actual-size pointer makes libdeflate insist on exactly out_size bytes.
    return libdeflate_deflate_decompress(d.get(), in.data(), in.size(), out, out_size, nullptr) == LIBDEFLATE_SUCCESS;
  }
#endif
  if (b != InflateBackend::kZlib) throw Error("inflate backend not built");
  // zlib counts in uInt; members are < 4 GiB (ListZipMembers) but stay safe.
  if (in.size() > 0xffffffffu || out_size > 0xffffffffu) return false;
  struct Stream {
    z_stream s{};
    bool ok = inflateInit2(&s, -15) == Z_OK;  // -15: raw deflate, 32 KiB window
    ~Stream() {
      if (ok) inflateEnd(&s);
    }
  };
  thread_local Stream st;
  if (!st.ok || inflateReset(&st.s) != Z_OK) throw Error("zlib: cannot initialise inflate");
  st.s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  st.s.avail_in = static_cast<uInt>(in.size());
  st.s.next_out = reinterpret_cast<Bytef*>(out);
  st.s.avail_out = static_cast<uInt>(out_size);
  const int rc = inflate(&st.s, Z_FINISH);
  if (rc == Z_STREAM_END) return st.s.total_out == out_size;
  // Z_BUF_ERROR with a full buffer: the stream has more than out_size bytes.
  return false;
}

uint32_t ZipCrc32(const char* data, size_t size) {
#ifdef UNITER_HAVE_LIBDEFLATE
  return libdeflate_crc32(0, data, size);
#else
  uLong c = crc32(0L, Z_NULL, 0);
  // zlib's length is a uInt: feed it in pieces.
  while (size > 0) {
    const uInt n = static_cast<uInt>(size > (1u << 30) ? (1u << 30) : size);
    c = crc32(c, reinterpret_cast<const Bytef*>(data), n);
    data += n;
    size -= n;
  }
  return static_cast<uint32_t>(c);
#endif
}

void ExtractZipMember(const ZipMember& m, char* out, const std::string& where, InflateBackend b) {
  auto member = [&m] { return "npz member '" + std::string(m.name) + "'"; };
  if (m.method == 0) {
    if (m.data.size() != m.size) throw FormatError(member() + " is stored but its sizes differ", where);
    if (m.size) std::memcpy(out, m.data.data(), m.size);
  } else if (!InflateRaw(m.data, out, m.size, b)) {
    throw FormatError(member() + " is corrupt (deflate stream does not decode to its size)", where);
  }
  if (ZipCrc32(out, m.size) != m.crc32) throw FormatError(member() + " is corrupt (CRC-32 mismatch)", where);
}

}  // namespace uniter::featdb::internal

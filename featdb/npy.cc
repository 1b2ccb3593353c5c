#include "featdb/npy.h"

#include <zip.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "common/error.h"
#include "featdb/internal/zip_reader.h"

namespace uniter::featdb {
namespace {

// Parser for the Python dict literal of a .npy header.
class HeaderParser {
 public:
  HeaderParser(std::string_view s, const std::string& where) : s_(s), where_(where) {}

  void Parse(std::string* descr, bool* fortran, std::vector<int64_t>* shape) {
    bool got_descr = false, got_fortran = false, got_shape = false;
    Expect('{');
    while (true) {
      Ws();
      if (Peek() == '}') break;
      const std::string key = String();
      Ws();
      Expect(':');
      Ws();
      if (key == "descr" && !got_descr) {
        if (Peek() == '[') Fail("structured dtypes are not supported");
        *descr = String();
        got_descr = true;
      } else if (key == "fortran_order" && !got_fortran) {
        *fortran = Bool();
        got_fortran = true;
      } else if (key == "shape" && !got_shape) {
        *shape = Tuple();
        got_shape = true;
      } else {
        Fail("unexpected or repeated key '" + key + "'");
      }
      Ws();
      if (Peek() == ',') ++pos_;
      else if (Peek() != '}') Fail("expected ',' or '}'");
    }
    ++pos_;
    Ws();
    if (pos_ != s_.size()) Fail("bytes after the header dict");
    if (!got_descr || !got_fortran || !got_shape) Fail("header lacks descr, fortran_order or shape");
  }

 private:
  [[noreturn]] void Fail(const std::string& what) const { throw FormatError("bad .npy header: " + what, where_); }
  char Peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void Ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t')) ++pos_;
  }
  void Expect(char c) {
    Ws();
    if (Peek() != c) Fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string String() {
    const char q = Peek();
    if (q != '\'' && q != '"') Fail("expected a string");
    const size_t end = s_.find(q, pos_ + 1);
    if (end == std::string_view::npos || end - pos_ > 64) Fail("unterminated string");
    std::string out(s_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return out;
  }
  bool Bool() {
    if (s_.substr(pos_, 4) == "True") { pos_ += 4; return true; }
    if (s_.substr(pos_, 5) == "False") { pos_ += 5; return false; }
    Fail("expected True or False");
  }
  std::vector<int64_t> Tuple() {
    std::vector<int64_t> dims;
    Expect('(');
    while (true) {
      Ws();
      if (Peek() == ')') break;
      if (!std::isdigit(static_cast<unsigned char>(Peek()))) Fail("expected a dimension");
      int64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(Peek()))) {
        if (v > (int64_t{1} << 40)) Fail("dimension too large");
        v = v * 10 + (s_[pos_++] - '0');
      }
      if (Peek() == 'L') ++pos_;  // Python 2 longs
      dims.push_back(v);
      if (dims.size() > 32) Fail("more than 32 dimensions");
      Ws();
      if (Peek() == ',') ++pos_;
      else if (Peek() != ')') Fail("expected ',' or ')'");
    }
    ++pos_;
    return dims;
  }

  std::string_view s_;
  const std::string& where_;
  size_t pos_ = 0;
};

std::string ShapeTuple(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

struct ZipCloser {
  void operator()(zip_t* z) const {
    if (z) zip_discard(z);
  }
};

std::string ZipErrorText(zip_error_t* err) { return zip_error_strerror(err); }

}  // namespace

namespace {

// Parses the .npy header of `b` into `a` (name, dtype, shape) and returns the
// offset of the data, which is checked to be exactly what the shape needs.
size_t ParseNpyHeader(std::string_view b, const std::string& name, const std::string& where, Array* a) {
  if (b.size() < 10 || std::memcmp(b.data(), "\x93NUMPY", 6) != 0)
    throw FormatError("array '" + name + "' is not a .npy (bad magic)", where);
  const int major = static_cast<uint8_t>(b[6]);
  size_t header_len, offset;
  if (major == 1) {
    header_len = static_cast<uint8_t>(b[8]) | (static_cast<size_t>(static_cast<uint8_t>(b[9])) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12) throw FormatError("array '" + name + "': truncated .npy header", where);
    header_len = 0;
    for (int i = 3; i >= 0; --i) header_len = (header_len << 8) | static_cast<uint8_t>(b[8 + i]);
    offset = 12;
  } else {
    throw FormatError("array '" + name + "': unsupported .npy version " + std::to_string(major), where);
  }
  if (header_len > b.size() - offset) throw FormatError("array '" + name + "': truncated .npy header", where);
  std::string descr;
  bool fortran = false;
  a->name = name;
  const std::string w = where.empty() ? name : where + "[" + name + "]";
  HeaderParser(b.substr(offset, header_len), w).Parse(&descr, &fortran, &a->shape);
  if (fortran && a->shape.size() > 1) throw FormatError("array '" + name + "': Fortran-order arrays are not supported", where);
  if (descr == "|O" || descr == "O") throw FormatError("array '" + name + "': object arrays (pickles) are not supported", where);
  a->dtype = DTypeFromDescr(descr);
  const size_t body = b.size() - offset - header_len;
  int64_t n = 1;
  for (int64_t d : a->shape) {
    if (d && n > (int64_t{1} << 40) / d) throw FormatError("array '" + name + "' is too large", where);
    n *= d;
  }
  const uint64_t need = static_cast<uint64_t>(n) * DTypeSize(a->dtype);
  if (body != need)
    throw FormatError("array '" + name + "': data is " + std::to_string(body) + " bytes, shape " +
                          ShapeTuple(a->shape) + " " + DTypeName(a->dtype) + " needs " + std::to_string(need),
                      where);
  return offset + header_len;
}

}  // namespace

Array ParseNpy(std::string_view b, const std::string& name, const std::string& where) {
  Array a;
  const size_t at = ParseNpyHeader(b, name, where, &a);
  a.data.assign(b.data() + at, b.size() - at);
  return a;
}

std::string WriteNpy(const Array& a) {
  std::string header = "{'descr': '" + DTypeDescr(a.dtype) + "', 'fortran_order': False, 'shape': " +
                       ShapeTuple(a.shape) + ", }";
  // numpy pads with spaces so that magic + lengths + header + '\n' is a multiple of 64.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>(header.size() >> 8));
  out += header;
  out += a.data;
  return out;
}

std::vector<Array> ReadNpz(std::string_view bytes, const std::string& where, const std::vector<std::string>& only) {
  // The zip is parsed in place (featdb/internal/zip_reader.h): no libzip, no
  // copy of the compressed bytes. A deflated member is inflated into a
  // per-thread buffer that stays allocated (and cache-warm) between records,
  // and its payload copied once into the array; inflating into the array
  // itself costs a zero-fill plus a move past the .npy header, and fresh
  // blocks of that size make glibc trim and re-fault the heap (bench/featdb).
  constexpr size_t kScratchMax = size_t{8} << 20;  // larger members: no per-thread copy kept
  thread_local std::string scratch;
  std::vector<Array> out;
  for (const internal::ZipMember& m : internal::ListZipMembers(bytes, where)) {
    std::string_view name = m.name;
    if (name.size() > 4 && name.substr(name.size() - 4) == ".npy") name.remove_suffix(4);
    if (!only.empty() && std::find(only.begin(), only.end(), name) == only.end()) continue;
    Array a;
    if (m.method == 0) {  // stored: check the bytes where they are
      if (internal::ZipCrc32(m.data.data(), m.data.size()) != m.crc32)
        throw FormatError("npz member '" + std::string(m.name) + "' is corrupt (CRC-32 mismatch)", where);
      const size_t at = ParseNpyHeader(m.data, std::string(name), where, &a);
      a.data.assign(m.data.data() + at, m.data.size() - at);
    } else if (m.size <= kScratchMax) {
      if (scratch.size() < m.size) scratch.resize(m.size);
      internal::ExtractZipMember(m, scratch.data(), where);
      const std::string_view npy(scratch.data(), m.size);
      const size_t at = ParseNpyHeader(npy, std::string(name), where, &a);
      a.data.assign(npy.data() + at, npy.size() - at);
    } else {
      a.data.resize(m.size);
      internal::ExtractZipMember(m, a.data.data(), where);
      const size_t at = ParseNpyHeader(a.data, std::string(name), where, &a);
      a.data.erase(0, at);
    }
    out.push_back(std::move(a));
  }
  return out;
}

std::vector<Array> ReadNpzFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ReadNpz(ss.str(), path);
}

std::string WriteNpz(const std::vector<Array>& arrays, bool compress) {
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* out_src = zip_source_buffer_create(nullptr, 0, 0, &err);
  if (!out_src) throw Error("npz: " + ZipErrorText(&err));
  zip_source_keep(out_src);  // we read the archive back out of it after zip_close
  zip_t* za = zip_open_from_source(out_src, ZIP_TRUNCATE, &err);
  if (!za) {
    zip_source_free(out_src);
    throw Error("npz: " + ZipErrorText(&err));
  }
  // Member sources point into `npys`, which must outlive zip_close.
  std::vector<std::string> npys;
  npys.reserve(arrays.size());
  auto fail = [&](const std::string& what) {
    zip_discard(za);
    zip_source_free(out_src);
    throw Error("npz: " + what);
  };
  for (const Array& a : arrays) {
    npys.push_back(WriteNpy(a));
    zip_source_t* s = zip_source_buffer(za, npys.back().data(), npys.back().size(), 0);
    if (!s) fail(zip_strerror(za));
    const zip_int64_t idx = zip_file_add(za, (a.name + ".npy").c_str(), s, ZIP_FL_ENC_UTF_8);
    if (idx < 0) {
      zip_source_free(s);
      fail(zip_strerror(za));
    }
    zip_set_file_compression(za, idx, compress ? ZIP_CM_DEFLATE : ZIP_CM_STORE, compress ? 6 : 0);
    zip_file_set_dostime(za, idx, 0, 0x21, 0);  // 1980-01-01 00:00, as numpy writes
  }
  if (zip_close(za) != 0) fail(zip_strerror(za));
  std::string out;
  if (zip_source_open(out_src) == 0) {
    zip_stat_t st;
    zip_source_stat(out_src, &st);
    out.resize(st.size);
    const zip_int64_t got = zip_source_read(out_src, out.data(), st.size);
    zip_source_close(out_src);
    if (got != static_cast<zip_int64_t>(st.size)) out.clear();
  }
  zip_source_free(out_src);
  if (out.empty()) throw Error("npz: cannot read back the written archive");
  return out;
}

}  // namespace uniter::featdb

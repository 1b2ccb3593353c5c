#include "featdb/array.h"

#include <cmath>
#include <cstring>
#include <limits>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

#include "common/error.h"

namespace uniter::featdb {

size_t DTypeSize(DType t) {
  switch (t) {
    case DType::kFloat16: case DType::kInt16: case DType::kUInt16: return 2;
    case DType::kFloat32: case DType::kInt32: case DType::kUInt32: return 4;
    case DType::kFloat64: case DType::kInt64: case DType::kUInt64: return 8;
    case DType::kInt8: case DType::kUInt8: case DType::kBool: return 1;
  }
  return 1;
}

std::string DTypeDescr(DType t) {
  switch (t) {
    case DType::kFloat16: return "<f2";
    case DType::kFloat32: return "<f4";
    case DType::kFloat64: return "<f8";
    case DType::kInt8: return "|i1";
    case DType::kInt16: return "<i2";
    case DType::kInt32: return "<i4";
    case DType::kInt64: return "<i8";
    case DType::kUInt8: return "|u1";
    case DType::kUInt16: return "<u2";
    case DType::kUInt32: return "<u4";
    case DType::kUInt64: return "<u8";
    case DType::kBool: return "|b1";
  }
  return "?";
}

const char* DTypeName(DType t) {
  switch (t) {
    case DType::kFloat16: return "float16";
    case DType::kFloat32: return "float32";
    case DType::kFloat64: return "float64";
    case DType::kInt8: return "int8";
    case DType::kInt16: return "int16";
    case DType::kInt32: return "int32";
    case DType::kInt64: return "int64";
    case DType::kUInt8: return "uint8";
    case DType::kUInt16: return "uint16";
    case DType::kUInt32: return "uint32";
    case DType::kUInt64: return "uint64";
    case DType::kBool: return "bool";
  }
  return "?";
}

bool IsFloat(DType t) { return t == DType::kFloat16 || t == DType::kFloat32 || t == DType::kFloat64; }

DType DTypeFromDescr(std::string_view d) {
  for (int i = 0; i <= static_cast<int>(DType::kBool); ++i)
    if (d == DTypeName(static_cast<DType>(i))) return static_cast<DType>(i);
  std::string_view body = d;
  if (!d.empty() && (d[0] == '<' || d[0] == '|' || d[0] == '=')) body = d.substr(1);
  else if (!d.empty() && d[0] == '>') {
    // Big-endian is legal numpy for 1-byte types only.
    if (d.size() == 3 && d[2] == '1') body = d.substr(1);
    else throw FormatError("big-endian dtype '" + std::string(d) + "' is not supported");
  }
  static const std::pair<const char*, DType> kTable[] = {
      {"f2", DType::kFloat16}, {"e", DType::kFloat16}, {"f4", DType::kFloat32}, {"f8", DType::kFloat64},
      {"i1", DType::kInt8},    {"i2", DType::kInt16},  {"i4", DType::kInt32},   {"i8", DType::kInt64},
      {"u1", DType::kUInt8},   {"u2", DType::kUInt16}, {"u4", DType::kUInt32},  {"u8", DType::kUInt64},
      {"b1", DType::kBool},    {"?", DType::kBool}};
  for (const auto& [name, t] : kTable)
    if (body == name) return t;
  throw FormatError("unsupported dtype '" + std::string(d) + "'");
}

int64_t Array::NumElements() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

void Array::Validate(const std::string& where) const {
  int64_t n = 1;
  for (int64_t s : shape) {
    if (s < 0) throw FormatError("array '" + name + "' has a negative dimension", where);
    if (s && n > std::numeric_limits<int64_t>::max() / s) throw FormatError("array '" + name + "' is too large", where);
    n *= s;
  }
  const uint64_t bytes = static_cast<uint64_t>(n) * DTypeSize(dtype);
  if (bytes != data.size())
    throw FormatError("array '" + name + "' holds " + std::to_string(data.size()) + " bytes, its shape needs " +
                          std::to_string(bytes), where);
}

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // Inf or NaN
    return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? (0x200u | ((abs >> 13) & 0x3ffu)) : 0u));
  }
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to Inf
  if (abs < 0x38800000u) {  // subnormal half or zero
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);  // below half the smallest subnormal
    const uint32_t e = abs >> 23;
    const uint32_t m = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14 + (112 - e + 1) - 1
    uint32_t half_m = m >> (shift);
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half_m & 1))) ++half_m;
    return static_cast<uint16_t>(sign | half_m);
  }
  // Normal: rebias exponent, round mantissa to nearest even.
  uint32_t h = ((abs - 0x38000000u) >> 13);
  const uint32_t rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h;
  return static_cast<uint16_t>(sign | h);
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1f;
  uint32_t m = h & 0x3ffu;
  uint32_t x;
  if (e == 0) {
    if (m == 0) {
      x = sign;
    } else {  // subnormal: normalise
      int shift = 0;
      while (!(m & 0x400u)) {
        m <<= 1;
        ++shift;
      }
      m &= 0x3ffu;
      x = sign | (static_cast<uint32_t>(113 - shift) << 23) | (m << 13);
    }
  } else if (e == 31) {
    x = sign | 0x7f800000u | (m << 13);
  } else {
    x = sign | ((e + 112) << 23) | (m << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

#if defined(__x86_64__)
__attribute__((target("f16c,avx"))) static void HalfToFloatF16C(const uint16_t* in, float* out, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) out[i] = HalfToFloat(in[i]);
}
__attribute__((target("f16c,avx"))) static void FloatToHalfF16C(const float* in, uint16_t* out, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 f = _mm256_loadu_ps(in + i);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) out[i] = FloatToHalf(in[i]);
}
static bool HasF16C() {
  // cpuid leaf 1: ecx bit 29 F16C, 28 AVX, 27 OSXSAVE; XCR0 must enable SSE+AVX state.
  static const bool has = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    if (!(c & (1u << 29)) || !(c & (1u << 28)) || !(c & (1u << 27))) return false;
    unsigned lo = 0, hi = 0;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 6u) == 6u;
  }();
  return has;
}
#endif

void HalfToFloatN(const uint16_t* in, float* out, size_t n) {
#if defined(__x86_64__)
  if (HasF16C()) return HalfToFloatF16C(in, out, n);
#endif
  for (size_t i = 0; i < n; ++i) out[i] = HalfToFloat(in[i]);
}

void FloatToHalfN(const float* in, uint16_t* out, size_t n) {
#if defined(__x86_64__)
  if (HasF16C()) return FloatToHalfF16C(in, out, n);
#endif
  for (size_t i = 0; i < n; ++i) out[i] = FloatToHalf(in[i]);
}

double Array::At(int64_t i) const {
  if (i < 0 || static_cast<uint64_t>(i + 1) * DTypeSize(dtype) > data.size())
    throw FormatError("array '" + name + "' index " + std::to_string(i) + " out of range");
  const char* p = data.data() + i * DTypeSize(dtype);
  auto load = [p](auto tag) {
    decltype(tag) v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  };
  switch (dtype) {
    case DType::kFloat16: return HalfToFloat(load(uint16_t{}));
    case DType::kFloat32: return load(float{});
    case DType::kFloat64: return load(double{});
    case DType::kInt8: return load(int8_t{});
    case DType::kInt16: return load(int16_t{});
    case DType::kInt32: return load(int32_t{});
    case DType::kInt64: return static_cast<double>(load(int64_t{}));
    case DType::kUInt8: return load(uint8_t{});
    case DType::kUInt16: return load(uint16_t{});
    case DType::kUInt32: return load(uint32_t{});
    case DType::kUInt64: return static_cast<double>(load(uint64_t{}));
    case DType::kBool: return load(uint8_t{}) ? 1.0 : 0.0;
  }
  return 0;
}

std::vector<float> Array::ToFloat32() const {
  const size_t n = data.size() / DTypeSize(dtype);
  std::vector<float> out(n);
  if (dtype == DType::kFloat16) {
    HalfToFloatN(reinterpret_cast<const uint16_t*>(data.data()), out.data(), n);
  } else if (dtype == DType::kFloat32) {
    if (n) std::memcpy(out.data(), data.data(), n * 4);
  } else {
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(At(static_cast<int64_t>(i)));
  }
  return out;
}

Array Array::FromFloat32(std::string name, std::vector<int64_t> shape, const std::vector<float>& values) {
  Array a;
  a.name = std::move(name);
  a.dtype = DType::kFloat32;
  a.shape = std::move(shape);
  a.data.assign(reinterpret_cast<const char*>(values.data()), values.size() * 4);
  return a;
}

Array Array::FromFloat16Bits(std::string name, std::vector<int64_t> shape, const std::vector<uint16_t>& bits) {
  Array a;
  a.name = std::move(name);
  a.dtype = DType::kFloat16;
  a.shape = std::move(shape);
  a.data.assign(reinterpret_cast<const char*>(bits.data()), bits.size() * 2);
  return a;
}

const Array* FindArray(const std::vector<Array>& arrays, std::string_view name) {
  for (const Array& a : arrays)
    if (a.name == name) return &a;
  return nullptr;
}

Array ToStorageDType(Array a) {
  if (a.dtype != DType::kFloat32) return a;
  const size_t n = a.data.size() / 4;
  std::vector<float> f(n);
  if (n) std::memcpy(f.data(), a.data.data(), n * 4);
  std::string out(n * 2, '\0');
  FloatToHalfN(f.data(), reinterpret_cast<uint16_t*>(out.data()), n);
  a.data = std::move(out);
  a.dtype = DType::kFloat16;
  return a;
}

Array TruncateRows(const Array& a, int64_t rows) {
  if (a.shape.empty() || rows >= a.shape[0]) return a;
  Array out;
  out.name = a.name;
  out.dtype = a.dtype;
  out.shape = a.shape;
  out.shape[0] = rows < 0 ? 0 : rows;
  const size_t row_bytes = a.shape[0] ? a.data.size() / static_cast<size_t>(a.shape[0]) : 0;
  out.data = a.data.substr(0, row_bytes * static_cast<size_t>(out.shape[0]));
  return out;
}

}  // namespace uniter::featdb

// One named n-d array of an image record (`features`, `norm_bb`, `conf`,
// `soft_labels`, ...), stored as C-order little-endian bytes, plus fp16 helpers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace uniter::featdb {

enum class DType { kFloat16, kFloat32, kFloat64, kInt8, kInt16, kInt32, kInt64, kUInt8, kUInt16, kUInt32, kUInt64, kBool };

// Bytes per element.
size_t DTypeSize(DType t);
// numpy's type string: "<f2", "<i8", "|u1", "|b1", ...
std::string DTypeDescr(DType t);
// Parses "<f2", "f2", "=f4", "|b1", "<i4", "float32"...; big-endian (">f4") and
// unknown types throw FormatError.
DType DTypeFromDescr(std::string_view descr);
// "float16", "int64", ...
const char* DTypeName(DType t);
bool IsFloat(DType t);

struct Array {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  std::string data;  // C-order, little-endian raw bytes

  int64_t NumElements() const;  // product of shape (1 for 0-d)
  // Rows (shape[0]), or 1 for a 0-d array.
  int64_t Rows() const { return shape.empty() ? 1 : shape[0]; }
  // Every element as float (ints and bools converted); NaN stays NaN.
  std::vector<float> ToFloat32() const;
  // Element i as double (no bounds check beyond an assert-like throw).
  double At(int64_t i) const;
  static Array FromFloat32(std::string name, std::vector<int64_t> shape, const std::vector<float>& values);
  static Array FromFloat16Bits(std::string name, std::vector<int64_t> shape, const std::vector<uint16_t>& bits);
  // Throws FormatError when data.size() != NumElements() * DTypeSize(dtype) or a dim is negative.
  void Validate(const std::string& where) const;

  bool operator==(const Array& o) const {
    return name == o.name && dtype == o.dtype && shape == o.shape && data == o.data;
  }
};

// The array called `name`, or nullptr.
const Array* FindArray(const std::vector<Array>& arrays, std::string_view name);

// IEEE half <-> float, round-to-nearest-even like numpy's astype(np.float16).
uint16_t FloatToHalf(float f);
float HalfToFloat(uint16_t h);
// Bulk conversions (F16C when the CPU has it). `n` elements.
void HalfToFloatN(const uint16_t* in, float* out, size_t n);
void FloatToHalfN(const float* in, uint16_t* out, size_t n);

// float32 → float16 (UNITER stores float32 as float16); other dtypes untouched.
Array ToStorageDType(Array a);
// The first `rows` rows (all if fewer); 0-d arrays are returned unchanged.
Array TruncateRows(const Array& a, int64_t rows);

}  // namespace uniter::featdb

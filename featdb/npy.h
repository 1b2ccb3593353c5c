// numpy's `.npy` (format versions 1.0, 2.0, 3.0) and `.npz` (a zip of .npy
// files, stored or deflated, as np.savez / np.savez_compressed write them).
//
// The .npy header is parsed strictly: exactly the keys 'descr', 'fortran_order'
// and 'shape'; little-endian or 1-byte numeric dtypes; C order; a data size
// that matches the shape. Anything else is a FormatError naming `where`.
// All functions are thread safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "featdb/array.h"

namespace uniter::featdb {

// Parses one .npy file's bytes into an array named `name`.
Array ParseNpy(std::string_view bytes, const std::string& name, const std::string& where = "");
// The .npy bytes numpy writes for `a` (format 1.0, header padded to 64 bytes).
std::string WriteNpy(const Array& a);

// Reads an .npz (zip) from memory: stored or deflated members, zip64, data
// descriptors (featdb/internal/zip_reader.h); every member's CRC-32 is checked.
// `only` non-empty: decode just those arrays (others are not inflated). Array
// names drop the `.npy` suffix. Each calling thread keeps one inflate buffer
// (as large as the largest member up to 8 MiB it has read) for reuse.
std::vector<Array> ReadNpz(std::string_view bytes, const std::string& where = "",
                           const std::vector<std::string>& only = {});
// Reads an .npz file from disk.
std::vector<Array> ReadNpzFile(const std::string& path);
// An .npz like np.savez_compressed (compress) or np.savez writes: one
// `<name>.npy` member per array in the given order, fixed 1980-01-01 timestamps
// (so equal arrays give equal bytes).
std::string WriteNpz(const std::vector<Array>& arrays, bool compress);

}  // namespace uniter::featdb

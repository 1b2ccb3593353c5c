// Image files for the extractor: the size from the header without decoding
// (so a decompression bomb costs nothing), a truncation check, then decoding
// exactly as BUTD's cv2.imread(path) does: 8-bit BGR, gray/alpha/16-bit/CMYK
// converted by OpenCV, EXIF orientation applied.
//
// Thread safety: every function is reentrant.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <opencv2/core.hpp>

namespace uniter::extractor {

enum class ImageFormat { kUnknown, kJpeg, kPng, kBmp, kWebp, kGif };
const char* ImageFormatName(ImageFormat f);  // "JPEG", "PNG", ...

// PIL's DecompressionBombError limit (2 * Image.MAX_IMAGE_PIXELS): the
// largest image BUTD-UNITER's generate_npz.py (Image.open(...).convert) opens.
inline constexpr int64_t kDefaultMaxPixels = 178956970;

struct ImageHeader {
  ImageFormat format = ImageFormat::kUnknown;
  int64_t width = 0, height = 0;  // 0 when the header does not say (or unknown format)
  // Empty when the file looks whole; else why not ("truncated JPEG: no
  // end-of-image marker after the scan data", ...).
  std::string truncated;
};

// Parses the signature and size of a JPEG (SOFn segment), PNG (IHDR), BMP,
// WebP (VP8/VP8L/VP8X) or GIF from the file's bytes, and checks that JPEG
// and PNG files are complete (EOI after the scan / IEND chunk present).
// Never throws; an unknown signature gives kUnknown.
ImageHeader ReadImageHeader(std::string_view bytes);

struct ImageReadOptions {
  // Refuse images with more pixels than this, before decoding. Default:
  // kDefaultMaxPixels. <= 0: no limit of ours (OpenCV's own 2^30 applies).
  int64_t max_pixels = kDefaultMaxPixels;
};

// Reads `path` as cv2.imread(path) (IMREAD_COLOR) would, into CV_8UC3 BGR.
// Throws uniter::Error(reason, path) for an empty file, a truncated JPEG/PNG,
// an image over max_pixels, or a file OpenCV cannot decode.
cv::Mat ReadImage(const std::string& path, const ImageReadOptions& options = {});

}  // namespace uniter::extractor

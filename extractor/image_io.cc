#include "extractor/image_io.h"

#include <opencv2/imgcodecs.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace uniter::extractor {
namespace {

uint32_t Be16(std::string_view b, size_t i) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(b[i])) << 8) | static_cast<uint8_t>(b[i + 1]);
}
uint32_t Be32(std::string_view b, size_t i) { return (Be16(b, i) << 16) | Be16(b, i + 2); }
uint32_t Le16(std::string_view b, size_t i) {
  return static_cast<uint8_t>(b[i]) | (static_cast<uint32_t>(static_cast<uint8_t>(b[i + 1])) << 8);
}
uint32_t Le24(std::string_view b, size_t i) { return Le16(b, i) | (static_cast<uint32_t>(static_cast<uint8_t>(b[i + 2])) << 16); }
uint32_t Le32(std::string_view b, size_t i) { return Le16(b, i) | (Le16(b, i + 2) << 16); }

bool IsSof(uint8_t m) { return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC; }

void ParseJpeg(std::string_view b, ImageHeader* h) {
  size_t pos = 2;
  while (pos < b.size()) {
    if (static_cast<uint8_t>(b[pos]) != 0xFF) return;  // broken marker structure: OpenCV decides
    while (pos < b.size() && static_cast<uint8_t>(b[pos]) == 0xFF) ++pos;  // fill bytes
    if (pos >= b.size()) break;
    const uint8_t m = static_cast<uint8_t>(b[pos++]);
    if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;  // no length
    if (m == 0xD9) return;  // EOI before any scan: OpenCV decides
    if (pos + 2 > b.size()) break;
    const uint32_t len = Be16(b, pos);
    if (len < 2) return;
    if (IsSof(m) && pos + 7 <= b.size()) {
      h->height = Be16(b, pos + 3);
      h->width = Be16(b, pos + 5);
    }
    if (m == 0xDA) {
      // Entropy-coded data never holds FF D9 (0xFF is stuffed), so the last
      // EOI must come after the first scan in a whole file. libjpeg would
      // pad a cut file with gray and only warn; PIL refuses it.
      const size_t scan = pos + len;
      const size_t eoi = b.rfind("\xFF\xD9");
      if (eoi == std::string_view::npos || eoi < scan)
        h->truncated = "truncated JPEG: no end-of-image marker after the scan data";
      return;
    }
    pos += len;
  }
  h->truncated = "truncated JPEG: the file ends before the scan data";
}

void ParsePng(std::string_view b, ImageHeader* h) {
  if (b.size() >= 24 && b.substr(12, 4) == "IHDR") {
    h->width = Be32(b, 16);
    h->height = Be32(b, 20);
  }
  uint64_t pos = 8;
  while (pos + 8 <= b.size()) {
    if (b.substr(pos + 4, 4) == "IEND") {
      if (pos + 12 <= b.size()) return;  // with its CRC
      break;
    }
    pos += 12 + static_cast<uint64_t>(Be32(b, pos));
  }
  h->truncated = "truncated PNG: no IEND chunk";
}

void ParseBmp(std::string_view b, ImageHeader* h) {
  if (b.size() < 26) return;
  if (Le32(b, 14) == 12) {  // OS/2 BITMAPCOREHEADER: 16-bit sizes
    h->width = Le16(b, 18);
    h->height = Le16(b, 20);
  } else {
    h->width = static_cast<int32_t>(Le32(b, 18));
    const int32_t height = static_cast<int32_t>(Le32(b, 22));  // negative: top-down rows
    h->height = height < 0 ? -static_cast<int64_t>(height) : height;
  }
}

void ParseWebp(std::string_view b, ImageHeader* h) {
  if (b.size() < 30) return;
  const std::string_view chunk = b.substr(12, 4);
  if (chunk == "VP8X") {
    h->width = 1 + static_cast<int64_t>(Le24(b, 24));
    h->height = 1 + static_cast<int64_t>(Le24(b, 27));
  } else if (chunk == "VP8L" && static_cast<uint8_t>(b[20]) == 0x2F) {
    const uint32_t bits = Le32(b, 21);
    h->width = 1 + (bits & 0x3FFF);
    h->height = 1 + ((bits >> 14) & 0x3FFF);
  } else if (chunk == "VP8 ") {
    h->width = Le16(b, 26) & 0x3FFF;
    h->height = Le16(b, 28) & 0x3FFF;
  }
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(std::string("cannot open: ") + std::strerror(errno), path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw IoError("read failed", path);
  return std::move(ss).str();
}

}  // namespace

const char* ImageFormatName(ImageFormat f) {
  switch (f) {
    case ImageFormat::kJpeg: return "JPEG";
    case ImageFormat::kPng: return "PNG";
    case ImageFormat::kBmp: return "BMP";
    case ImageFormat::kWebp: return "WebP";
    case ImageFormat::kGif: return "GIF";
    case ImageFormat::kUnknown: break;
  }
  return "unknown";
}

ImageHeader ReadImageHeader(std::string_view b) {
  ImageHeader h;
  if (b.size() >= 3 && b.substr(0, 3) == "\xFF\xD8\xFF") {
    h.format = ImageFormat::kJpeg;
    ParseJpeg(b, &h);
  } else if (b.size() >= 8 && b.substr(0, 8) == std::string_view("\x89PNG\r\n\x1A\n", 8)) {
    h.format = ImageFormat::kPng;
    ParsePng(b, &h);
  } else if (b.size() >= 2 && b.substr(0, 2) == "BM") {
    h.format = ImageFormat::kBmp;
    ParseBmp(b, &h);
  } else if (b.size() >= 12 && b.substr(0, 4) == "RIFF" && b.substr(8, 4) == "WEBP") {
    h.format = ImageFormat::kWebp;
    ParseWebp(b, &h);
  } else if (b.size() >= 10 && (b.substr(0, 6) == "GIF87a" || b.substr(0, 6) == "GIF89a")) {
    h.format = ImageFormat::kGif;
    h.width = Le16(b, 6);
    h.height = Le16(b, 8);
  }
  return h;
}

cv::Mat ReadImage(const std::string& path, const ImageReadOptions& options) {
  const std::string bytes = ReadWholeFile(path);
  if (bytes.empty()) throw Error("empty file (0 bytes)", path);
  const ImageHeader h = ReadImageHeader(bytes);
  if (!h.truncated.empty()) throw Error(h.truncated, path);
  const int64_t pixels = h.width * h.height;
  if (options.max_pixels > 0 && pixels > options.max_pixels)
    throw Error(std::string(ImageFormatName(h.format)) + " of " + std::to_string(h.width) + "x" +
                    std::to_string(h.height) + " = " + std::to_string(pixels) + " pixels, over --max-pixels " +
                    std::to_string(options.max_pixels) + " (not decoded)",
                path);
  cv::Mat bgr;
  try {
    // cv2.imread(path)'s decoder, conversions and EXIF rotation, on the bytes
    // the header check read: the file is read once.
    const cv::Mat buf(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
    bgr = cv::imdecode(buf, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    throw Error(std::string("OpenCV cannot decode it: ") + e.err, path);
  }
  if (bgr.empty()) {
    if (h.format == ImageFormat::kUnknown) throw Error("not an image (no format OpenCV can decode)", path);
    if (h.format == ImageFormat::kGif) throw Error("GIF: OpenCV (like cv2.imread) has no GIF decoder", path);
    throw Error(std::string("corrupt ") + ImageFormatName(h.format) + " (OpenCV cannot decode it)", path);
  }
  if (bgr.type() != CV_8UC3) throw Error("decoded to an unexpected pixel type", path);
  return bgr;
}

}  // namespace uniter::extractor

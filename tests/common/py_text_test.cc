// common/utf8.h, common/py_json.h and common/py_str.h against the reference
// Python itself: bytes.decode(errors="replace"), json.dumps and str.lower /
// str.isspace on the same inputs.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "common/py_json.h"
#include "common/py_str.h"
#include "common/utf8.h"
#include "tests/test_util.h"

namespace uniter {
namespace {

std::string Hex(std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  std::string h;
  for (unsigned char c : s) h += std::string{kHex[c >> 4], kHex[c & 15]};
  return h;
}

// Runs `code` in the reference Python with one input per line (hex of the
// bytes) in argv[1]; returns its stdout.
std::string RunPython(const std::string& code, const std::vector<std::string>& inputs) {
  std::string lines;
  for (const std::string& s : inputs) {
    lines.push_back('x');  // empty inputs keep a line
    lines += Hex(s);
    lines.push_back('\n');
  }
  const std::string path = testing::TempDir("py_text") + "/in.txt";
  testing::WriteFile(path, lines);
  const auto r = testing::Run(testing::Quote(testing::Python()) + " -c " +
                              testing::Quote("import sys, json\ninputs = [bytes.fromhex(l[1:]) for l in "
                                             "open(sys.argv[1]).read().split()]\n" + code) +
                              " " + testing::Quote(path));
  EXPECT_EQ(r.exit_code, 0) << code;
  return r.out;
}

// Keys that exercise every rule: each C0 control, DEL, quotes, non-ASCII in
// 2/3/4 bytes, U+FFFD itself, and ill-formed UTF-8 of every kind.
std::vector<std::string> HardStrings() {
  std::vector<std::string> v;
  for (int c = 0; c < 0x20; ++c) {
    std::string s = "k";
    s.push_back(static_cast<char>(c));
    v.push_back(s + "x");
  }
  v.push_back("del\x7f");
  v.push_back("q\"b\\s/ ~");
  v.push_back("caf\xc3\xa9 \xc2\x80\xc2\xa0\xdf\xbf");
  v.push_back("\xe2\x82\xac\xef\xbf\xbd\xef\xbf\xbf\xe0\xa0\x80");     // €, U+FFFD, U+FFFF, U+0800
  v.push_back("\xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xf0\x90\x80\x80");  // non-BMP: 😀, U+10FFFF, U+10000
  v.push_back("lone \xed\xa0\x80 hi \xed\xbf\xbf");                   // UTF-8 of lone surrogates
  v.push_back("\xff\xfe x \x80 \xbf\xc0\xaf \xc1\xbf");               // bytes never valid, overlongs
  v.push_back("\xe0\x80\xaf \xf0\x80\x80\xaf \xf4\x90\x80\x80 \xf5\x80");  // overlong 3/4, > U+10FFFF
  v.push_back("trunc \xe2\x82");
  v.push_back("trunc4 \xf0\x9f\x98");
  v.push_back("\xc3");
  v.push_back("");
  // Random byte soup, biased to lead and continuation bytes.
  std::mt19937 rng(7);
  const unsigned char kPick[] = {0x41, 0x7f, 0x80, 0xbf, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xa0, 0x90, 0x8f};
  for (int n = 0; n < 200; ++n) {
    std::string s;
    for (int k = 0; k < 12; ++k) s.push_back(static_cast<char>(kPick[rng() % sizeof kPick]));
    v.push_back(s);
  }
  return v;
}

TEST(Utf8, DecodesLikePythonsReplaceErrorHandler) {
  const std::vector<std::string> in = HardStrings();
  std::string ours;
  for (const std::string& s : in) {
    for (char32_t c : DecodeUtf8(s)) ours += std::to_string(uint32_t(c)) + " ";
    ours += IsValidUtf8(s) ? "valid\n" : "invalid\n";
  }
  const std::string py = RunPython(
      "for b in inputs:\n"
      "  t = b.decode('utf-8', errors='replace')\n"
      "  try: b.decode('utf-8'); ok = 'valid'\n"
      "  except UnicodeDecodeError: ok = 'invalid'\n"
      "  sys.stdout.write(''.join(str(ord(c)) + ' ' for c in t) + ok + '\\n')\n",
      in);
  EXPECT_EQ(ours, py);
}

TEST(Utf8, EncodeRoundTripsEveryScalarValue) {
  std::u32string all;
  for (char32_t c = 0; c <= 0x10FFFF; ++c)
    if (c < 0xD800 || c > 0xDFFF) all.push_back(c);
  const std::string bytes = EncodeUtf8(all);
  EXPECT_TRUE(IsValidUtf8(bytes));
  EXPECT_EQ(DecodeUtf8(bytes), all);
}

TEST(PyJson, StringsListsAndMapsAreWhatJsonDumpsWrites) {
  const std::vector<std::string> in = HardStrings();
  std::string ours = PyJsonList(in) + "\n";
  std::vector<std::pair<std::string, int64_t>> items;
  for (size_t i = 0; i < in.size(); ++i) items.emplace_back(in[i], int64_t(i) - 5);
  ours += PyJsonIntMap(items) + "\n";
  for (const std::string& s : in) {
    if (!IsValidUtf8(s)) continue;  // ensure_ascii=False is only defined here on text
    std::string one;
    AppendPyJsonString(&one, s, /*ensure_ascii=*/false);
    ours += one + "\n";
  }
  // Our bytes are what Python reads from a file name: surrogateescape.
  const std::string py = RunPython(
      "keys = [b.decode('utf-8', errors='surrogateescape') for b in inputs]\n"
      "out = json.dumps(keys) + '\\n' + json.dumps({k: i - 5 for i, k in enumerate(keys)}) + '\\n'\n"
      "for b in inputs:\n"
      "  try: out += json.dumps(b.decode('utf-8'), ensure_ascii=False) + '\\n'\n"
      "  except UnicodeDecodeError: pass\n"
      "sys.stdout.buffer.write(out.encode('utf-8'))\n",
      in);
  ASSERT_EQ(ours.size(), py.size());
  EXPECT_EQ(ours, py);
}

TEST(PyStr, LowerAndIsspaceAreWhatPython311Gives) {
  // Every BMP code point (and a slice of the SMP) through str.lower and
  // str.isspace, as one string each; final sigma in context as well.
  std::vector<std::string> in;
  std::u32string bmp;
  for (char32_t c = 1; c < 0x10000; ++c)
    if (c < 0xD800 || c > 0xDFFF) bmp.push_back(c);
  for (char32_t c = 0x10400; c < 0x1E950; ++c) bmp.push_back(c);
  std::string all = EncodeUtf8(bmp);
  in.push_back(all);
  in.push_back("\xce\xa3\xce\x91\xce\xa3 \xce\xb1\xce\xa3. \xce\xa3 A\xcc\x81\xce\xa3\xcc\x81 \xc4\xb0stanbul");
  std::string ours;
  for (const std::string& s : in) ours += Hex(PyLowerUtf8(s)) + "\n";
  for (char32_t c : bmp) ours += IsPySpace(c) ? "1" : "0";
  const std::string py = RunPython(
      "out = ''\n"
      "for b in inputs: out += b.decode('utf-8').lower().encode('utf-8').hex() + '\\n'\n"
      "out += ''.join('1' if c.isspace() else '0' for c in inputs[0].decode('utf-8'))\n"
      "sys.stdout.write(out)\n",
      in);
  EXPECT_EQ(ours, py);
}

}  // namespace
}  // namespace uniter

#include "tests/tokenizer/corpus.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "common/utf8.h"
#include "tests/test_util.h"

namespace uniter::tokenizer::testing {

namespace {

using uniter::testing::Quote;

using uniter::AppendUtf8;

std::string U(std::initializer_list<char32_t> cps) {
  std::string s;
  for (char32_t c : cps) AppendUtf8(c, &s);
  return s;
}

std::string Repeat(const std::string& s, int n) {
  std::string r;
  for (int i = 0; i < n; ++i) r += s;
  return r;
}

}  // namespace

std::string VocabPath(bool cased) {
  return uniter::testing::SharedDataDir() + (cased ? "/vocab/bert-base-cased-vocab.txt"
                                                    : "/vocab/bert-base-uncased-vocab.txt");
}

std::vector<std::string> Nlvr2Sentences() {
  std::vector<std::string> out;
  for (const char* split : {"dev", "test1"}) {
    const std::string path = uniter::testing::SharedDataDir() + "/nlvr2/" + split + ".json";
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      out.push_back(nlohmann::json::parse(line).at("sentence").get<std::string>());
    }
  }
  return out;
}

std::vector<std::string> CcCaptions() {
  std::vector<std::string> out;
  const std::string path = uniter::testing::SharedDataDir() + "/cc/Validation_GCC-1.1.0-Validation.tsv";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::string line;
  while (std::getline(in, line)) out.push_back(line.substr(0, line.find('\t')));
  return out;
}

std::vector<std::string> TortureLines() {
  std::vector<std::string> L;
  // Empty and whitespace-only lines, every str.isspace() character, and
  // look-alikes that are not whitespace (U+180E, U+200B, U+FEFF are Cf).
  L.push_back("");
  L.push_back(" ");
  L.push_back("\t \r \x0b \x0c ");
  const char32_t spaces[] = {0x09, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680,
                             0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008,
                             0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0x180E, 0x200B,
                             0xFEFF, 0x2060};
  for (char32_t s : spaces) {
    L.push_back("word" + U({s}) + "other");
    L.push_back(U({s, s}));
    L.push_back(U({s}) + "lead and trail" + U({s}));
  }
  // Every C0/C1 control and a DEL inside and between words.
  for (char32_t c = 0; c < 0x20; ++c)
    if (c != '\n') L.push_back("ab" + U({c}) + "cd " + U({c}) + " x" + U({c}));
  for (char32_t c = 0x7F; c < 0xA0; ++c) L.push_back("ab" + U({c}) + "cd " + U({c}));
  // Format characters (Cf), private use (Co), unassigned (Cn), noncharacters,
  // and characters new in Unicode 15 (unassigned to Python 3.11).
  for (char32_t c : {0xAD, 0x600, 0x61C, 0x6DD, 0x70F, 0x180E, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x202A,
                     0x202E, 0x2060, 0x2064, 0x2066, 0x2069, 0xFEFF, 0xFFF9, 0xFFFB, 0x110BD, 0x1D173,
                     0xE0001, 0xE0020, 0xE007F, 0xE000, 0xF8FF, 0xF0000, 0x10FFFD, 0x378, 0x9FFF + 0, 0xFDD0,
                     0xFFFE, 0xFFFF, 0x1FFFE, 0x10FFFF, 0x1F6DC, 0x1FA75, 0x31350, 0x323AF, 0x11F00, 0x1E4D0,
                     0x0CF3, 0x2FFFF, 0xE01EF, 0xFFFD}) {
    L.push_back("ab" + U({c}) + "cd " + U({c}) + " [" + U({c}) + "]");
  }
  // CJK: every block of BERT's list, its edges, and neighbours outside it.
  for (char32_t c : {0x4E00, 0x4E2D, 0x6587, 0x9FFF, 0x9FA5, 0x3400, 0x4DBF, 0x20000, 0x2A6DF, 0x2A700,
                     0x2B73F, 0x2B740, 0x2B81F, 0x2B820, 0x2CEAF, 0xF900, 0xF9FF, 0xFA6E, 0xFAFF, 0x2F800,
                     0x2FA1F, 0x2CEB0, 0x30000, 0x31350, 0x3000, 0x3001, 0x3002, 0x3041, 0x30A2, 0xAC00,
                     0xFF01, 0xFF21, 0xFF41, 0x2F00, 0x31C0, 0xFF0C}) {
    L.push_back("x" + U({c}) + "y " + U({c, c, c}) + " " + U({c}) + "." + " A" + U({c}) + "B");
  }
  L.push_back("我爱北京天安门。今天天气很好，我们去公园玩吧！");
  L.push_back("東京は日本の首都です。カタカナとひらがな、そして漢字。");
  L.push_back("한국어 문장입니다. 서울은 아름답다!");
  L.push_back("混合 mixed 文本 text，标点！符号？（括号）【方括号】「引号」");
  // Accents and combining marks, precomposed and decomposed.
  L.push_back("naïve café résumé Zürich Ångström São Paulo Øresund Łódź façade");
  L.push_back(U({'e', 0x301}) + " " + U({'a', 0x308, 0x301, 0x327}) + " " + U({0x301, 'x'}) + " " +
              U({0x301}) + " " + U({'A', 0x30A}) + " " + U({0x1E9B, 0x323}));
  L.push_back("NAÏVE CAFÉ RÉSUMÉ ÀÉÎÕÜ Ÿ ŒUVRE ÆSIR İSTANBUL ıi ß ẞ ﬁ ﬂ ǅ ǈ ǋ Ǳ");
  L.push_back(U({0x212A, 0x2126, 0x212B, 0x2160, 0x24B6, 0xFF21, 0x1D400, 0x10400, 0x1E900, 0x10C80}));
  // Marks of newer Unicode versions (9.0-14.0) and ones re-categorized as Mn.
  L.push_back(U({'a', 0x1CF33, 'b'}) + " " + U({'e', 0x898}) + " " + U({'k', 0x1885}) + " " + U({'o', 0x11D35}) +
              " " + U({'u', 0x0B55, 0x08D4}));
  L.push_back(U({0x1D165, 0x1D166, 0x1D16D, 0x301, 0x1D165}) + " " + U({'a', 0x1D16D, 0x302, 0x1D165, 0x301}));
  L.push_back(U({'a', 0x302E, 0x301, 0x302F}) + " " + U({0x1B44, 0x1B03}) + " " + U({0x1715, 0x1714}));
  L.push_back(U({0x37E, 0x387, 0x1FEF, 0x1FFD, 0x1FEE, 0x340, 0x341, 0x343, 0x344, 0x2329, 0x232A}));
  L.push_back(U({'a', 0x37E, 'b', 0x1FEF, 'c', 0x1FC1, 'd', 0x385, 'e'}));
  L.push_back("가각 힣 " + U({0x1100, 0x1161, 0x11A8}) + " がぎぐ パピプ " + U({0x304B, 0x3099}) + " ｶﾞ");
  L.push_back("हिन्दी देवनागरी क्षत्रिय ภาษาไทย ພາສາລາວ ᠮᠣᠩᠭᠣᠯ ꦧꦱꦗꦮ");
  // Greek: capitals, final sigma in every context the rule looks at.
  L.push_back("ΟΔΟΣ ΟΔΟΣ. ΟΔΟΣΑ Σ ΣΑ ΑΣ ΑΣ'Α ΑΣ.Α ΑΣ.. Α.Σ ΑΣ" + U({0x301}) + " ΑΣ" + U({0x301}) + "Α");
  L.push_back("ὈΔΥΣΣΕΎΣ ΆΣΣΟΣ ΣΊΣΥΦΟΣ σς ΣΣΣ Σ" + U({0x200B}) + "Α Α" + U({0xAD}) + "Σ Α" + U({0x2019}) + "Σ");
  L.push_back("ΑΣ中 中ΑΣ ΑΣ[UNK] ΑΣ" + U({0x1}) + "Α ΑΣ" + U({0x378}) + "Α aΣ 1Σ ΑΣ1 ΑΣ_ ΑΣ-Β");
  L.push_back("Ἀθῆναι ἐν ἀρχῇ ἦν ὁ λόγος ΈΛΛΗΝΙΚΆ Ϊ́ ΰ");
  // Emoji: single, ZWJ sequences, skin tones, flags, keycaps, VS16.
  L.push_back("😀 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷🇯🇵 1️⃣ #️⃣ ❤️ ☺︎ 🫶 🧑🏿‍🚀 a😀b 😀.😀");
  // RTL: Hebrew, Arabic with harakat, marks and overrides.
  L.push_back("שָׁלוֹם עולם! مَرْحَبًا بِالْعَالَمِ، كيف حالك؟ " + U({0x200F}) + "abc" + U({0x202E}) + "def" + U({0x202C}));
  L.push_back("العربية ١٢٣ ۴۵۶ ﷺ ﷽ ﻻ");
  // never_split tokens in and out of place.
  L.push_back("[UNK] [SEP] [PAD] [CLS] [MASK] [unk] [Unk] [UNK]. a[UNK] [UNK]a [[UNK]] [MASK][MASK]");
  L.push_back("中[UNK]中 [UNK]" + U({0x200B}) + " " + U({0x1}) + "[CLS] [CLS" + U({0x1}) + "] [SEP]" +
              U({0x301}) + " [MASK]中");
  L.push_back("[UNK]" + U({0xA0}) + "[SEP]" + U({0x3000}) + "[CLS] ##a ## # ###");
  // Very long words: around max_input_chars_per_word in code points.
  for (int n : {99, 100, 101, 250}) {
    L.push_back(Repeat("a", n));
    L.push_back(Repeat("é", n));
    L.push_back(Repeat("e" + U({0x301}), n / 2 + 1));
    L.push_back(Repeat("中", n));
    L.push_back(Repeat("ab", n / 2) + "," + Repeat("c", n));
    L.push_back(Repeat("x", n) + U({0x200B}) + "y");
  }
  L.push_back(Repeat("supercalifragilisticexpialidocious", 4));
  L.push_back(Repeat("word ", 2000));
  // Invalid UTF-8: stray continuation, truncated sequences, overlong forms,
  // encoded surrogates, bytes that never appear, truncated at the end.
  for (std::string bad : {std::string("\x80"), std::string("\xbf\xbf"), std::string("\xc3"), std::string("\xe4\xb8"),
                          std::string("\xf0\x9f\x98"), std::string("\xc0\xaf"), std::string("\xe0\x80\xaf"),
                          std::string("\xed\xa0\x80"), std::string("\xed\xbf\xbf"), std::string("\xf4\x90\x80\x80"),
                          std::string("\xf5\x80"), std::string("\xfe\xff"), std::string("\xc1\xbf")}) {
    L.push_back("a" + bad + "b c" + bad + " " + bad + "d " + bad);
    L.push_back("caf" + bad + "é " + bad + "中" + bad + " end" + bad);
  }
  L.push_back("\xe4 x");  // a lead byte followed by a space: the space must survive
  L.push_back(std::string("a\0b \0 c", 7));

  // Seeded random lines from pools of the characters above and any code point.
  std::mt19937 rng(20240611);
  std::vector<char32_t> pool = {'a', 'B', 'z', 'Q', '0', '9', '.', ',', '!', '#', '[', ']', '-', '\'', ' ', ' ',
                                ' ', '\t', 0xA0, 0x3000, 0x2028, 0x85, 0x1F, 0x1, 0x7F, 0x9F, 0xAD, 0x200B, 0x200D,
                                0xFEFF, 0xFFFD, 0xE9, 0xC9, 0x301, 0x308, 0x327, 0x130, 0x131, 0xDF, 0x3A3, 0x3C3,
                                0x3C2, 0x391, 0x386, 0x1F08, 0x4E2D, 0x6587, 0xF900, 0x20000, 0x3042, 0x30AB,
                                0xAC00, 0x5D0, 0x5B8, 0x627, 0x64E, 0x1F600, 0x1F3FD, 0xFE0F, 0x1D165, 0x302E,
                                0x37E, 0x1FEF, 0x2019, 0x201C, 0xB7, 0x2126, 0x212A, 0xFB01, 0x10400, 0xE000,
                                0x378, 0x1F6DC, 0x2F800, 0xFF0C, 0x3002, 0x2026, 0xA7, 0xB6, 0x5F, 0x60, 0x7E};
  for (int line = 0; line < 3000; ++line) {
    std::string s;
    const int len = static_cast<int>(rng() % 40);
    for (int k = 0; k < len; ++k) {
      const uint32_t r = rng() % 100;
      char32_t c;
      if (r < 70) {
        c = pool[rng() % pool.size()];
      } else if (r < 85) {
        c = static_cast<char32_t>(0x20 + rng() % 0x5F);
      } else {
        do c = static_cast<char32_t>(rng() % 0x110000);
        while ((c >= 0xD800 && c <= 0xDFFF) || c == '\n');
      }
      AppendUtf8(c, &s);
    }
    if (line % 50 == 0) s.insert(rng() % (s.size() + 1), 1, static_cast<char>(0x80 + rng() % 0x80));
    L.push_back(s);
  }
  return L;
}

std::vector<std::string> AllCodePointLines() {
  std::vector<std::string> out;
  std::string line;
  int n = 0;
  for (char32_t c = 0; c < 0x110000; ++c) {
    if ((c >= 0xD800 && c <= 0xDFFF) || c == '\n') continue;
    if (n) line += ' ';
    line += 'a';
    AppendUtf8(c, &line);
    line += 'b';
    if (++n == 64) {
      out.push_back(line);
      line.clear();
      n = 0;
    }
  }
  if (!line.empty()) out.push_back(line);
  return out;
}

std::vector<std::vector<int32_t>> ReferenceIds(const std::string& impl, const std::string& vocab, bool lower,
                                               const std::vector<std::string>& lines,
                                               const std::string& save_json) {
  static int counter = 0;
  const std::string dir = uniter::testing::TempDir("ref" + std::to_string(counter++));
  const std::string in = dir + "/lines.txt", out = dir + "/ids.txt";
  std::string data;
  for (const auto& l : lines) data += l + "\n";
  uniter::testing::WriteFile(in, data);
  std::string cmd = Quote(uniter::testing::Python()) + " " +
                    Quote(uniter::testing::SourceRoot() + "/tests/tokenizer/bert_reference.py") + " --impl " + impl +
                    " --vocab " + Quote(vocab) + " --lower " + (lower ? "1" : "0") + " --input " + Quote(in) +
                    " --output " + Quote(out);
  if (!save_json.empty()) cmd += " --save-json " + Quote(save_json);
  const auto r = uniter::testing::Run(cmd + " 2>&1");
  if (r.exit_code != 0) throw std::runtime_error("reference failed: " + cmd + "\n" + r.out);
  std::ifstream f(out);
  std::vector<std::vector<int32_t>> ids;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ss(line);
    std::vector<int32_t> v;
    int32_t x;
    while (ss >> x) v.push_back(x);
    ids.push_back(std::move(v));
  }
  if (ids.size() != lines.size())
    throw std::runtime_error("reference gave " + std::to_string(ids.size()) + " lines for " +
                             std::to_string(lines.size()));
  return ids;
}

std::string Escape(const std::string& s) {
  std::string o;
  static const char* kHex = "0123456789abcdef";
  for (unsigned char c : s.substr(0, 300)) {
    if (c >= 0x20 && c < 0x7F) {
      o.push_back(static_cast<char>(c));
    } else {
      o += "\\x";
      o.push_back(kHex[c >> 4]);
      o.push_back(kHex[c & 15]);
    }
  }
  if (s.size() > 300) o += "...";
  return o;
}

}  // namespace uniter::tokenizer::testing

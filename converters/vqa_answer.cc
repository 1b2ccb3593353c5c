#include "converters/vqa_answer.h"

#include <unicode/uchar.h>

#include <array>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/py_str.h"
#include "common/utf8.h"

namespace uniter::converters {

namespace {

// The tables of the official evaluation (vqaEval.py), straight quotes.
const std::unordered_map<std::string_view, std::string_view>& Contractions() {
  static const auto* m = new std::unordered_map<std::string_view, std::string_view>{
      {"aint", "ain't"}, {"arent", "aren't"}, {"cant", "can't"}, {"couldve", "could've"},
      {"couldnt", "couldn't"}, {"couldn'tve", "couldn't've"}, {"couldnt've", "couldn't've"},
      {"didnt", "didn't"}, {"doesnt", "doesn't"}, {"dont", "don't"}, {"hadnt", "hadn't"},
      {"hadnt've", "hadn't've"}, {"hadn'tve", "hadn't've"}, {"hasnt", "hasn't"}, {"havent", "haven't"},
      {"hed", "he'd"}, {"hed've", "he'd've"}, {"he'dve", "he'd've"}, {"hes", "he's"}, {"howd", "how'd"},
      {"howll", "how'll"}, {"hows", "how's"}, {"Id've", "I'd've"}, {"I'dve", "I'd've"}, {"Im", "I'm"},
      {"Ive", "I've"}, {"isnt", "isn't"}, {"itd", "it'd"}, {"itd've", "it'd've"}, {"it'dve", "it'd've"},
      {"itll", "it'll"}, {"let's", "let's"}, {"maam", "ma'am"}, {"mightnt", "mightn't"},
      {"mightnt've", "mightn't've"}, {"mightn'tve", "mightn't've"}, {"mightve", "might've"},
      {"mustnt", "mustn't"}, {"mustve", "must've"}, {"neednt", "needn't"}, {"notve", "not've"},
      {"oclock", "o'clock"}, {"oughtnt", "oughtn't"}, {"ow's'at", "'ow's'at"}, {"'ows'at", "'ow's'at"},
      {"'ow'sat", "'ow's'at"}, {"shant", "shan't"}, {"shed've", "she'd've"}, {"she'dve", "she'd've"},
      {"she's", "she's"}, {"shouldve", "should've"}, {"shouldnt", "shouldn't"},
      {"shouldnt've", "shouldn't've"}, {"shouldn'tve", "shouldn't've"}, {"somebody'd", "somebodyd"},
      {"somebodyd've", "somebody'd've"}, {"somebody'dve", "somebody'd've"}, {"somebodyll", "somebody'll"},
      {"somebodys", "somebody's"}, {"someoned", "someone'd"}, {"someoned've", "someone'd've"},
      {"someone'dve", "someone'd've"}, {"someonell", "someone'll"}, {"someones", "someone's"},
      {"somethingd", "something'd"}, {"somethingd've", "something'd've"},
      {"something'dve", "something'd've"}, {"somethingll", "something'll"}, {"thats", "that's"},
      {"thered", "there'd"}, {"thered've", "there'd've"}, {"there'dve", "there'd've"},
      {"therere", "there're"}, {"theres", "there's"}, {"theyd", "they'd"}, {"theyd've", "they'd've"},
      {"they'dve", "they'd've"}, {"theyll", "they'll"}, {"theyre", "they're"}, {"theyve", "they've"},
      {"twas", "'twas"}, {"wasnt", "wasn't"}, {"wed've", "we'd've"}, {"we'dve", "we'd've"},
      {"weve", "we've"}, {"werent", "weren't"}, {"whatll", "what'll"}, {"whatre", "what're"},
      {"whats", "what's"}, {"whatve", "what've"}, {"whens", "when's"}, {"whered", "where'd"},
      {"wheres", "where's"}, {"whereve", "where've"}, {"whod", "who'd"}, {"whod've", "who'd've"},
      {"who'dve", "who'd've"}, {"wholl", "who'll"}, {"whos", "who's"}, {"whove", "who've"},
      {"whyll", "why'll"}, {"whyre", "why're"}, {"whys", "why's"}, {"wont", "won't"},
      {"wouldve", "would've"}, {"wouldnt", "wouldn't"}, {"wouldnt've", "wouldn't've"},
      {"wouldn'tve", "wouldn't've"}, {"yall", "y'all"}, {"yall'll", "y'all'll"}, {"y'allll", "y'all'll"},
      {"yall'd've", "y'all'd've"}, {"y'alld've", "y'all'd've"}, {"y'all'dve", "y'all'd've"},
      {"youd", "you'd"}, {"youd've", "you'd've"}, {"you'dve", "you'd've"}, {"youll", "you'll"},
      {"youre", "you're"}, {"youve", "you've"}};
  return *m;
}

const std::unordered_map<std::string_view, std::string_view>& ManualMap() {
  static const auto* m = new std::unordered_map<std::string_view, std::string_view>{
      {"none", "0"}, {"zero", "0"}, {"one", "1"}, {"two", "2"}, {"three", "3"}, {"four", "4"},
      {"five", "5"}, {"six", "6"}, {"seven", "7"}, {"eight", "8"}, {"nine", "9"}, {"ten", "10"}};
  return *m;
}

constexpr std::array<char, 21> kPunct = {';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+',
                                         '\\', '_', '-', '>', '<', '@', '`', ',', '?', '!'};

// The code point starting at byte i of s (U+FFFD for a bad sequence) and its length.
std::pair<char32_t, size_t> CodePointAt(std::string_view s, size_t i) {
  size_t len = 0;
  const char32_t c = DecodeUtf8(s, i, &len);
  return {c, len};
}

// Python 3's `\d` in a str pattern: any Unicode decimal digit (category Nd).
bool IsDigitAt(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return c >= '0' && c <= '9';
  return PyCategory(CodePointAt(s, i).first) == U_DECIMAL_DIGIT_NUMBER;  // Unicode 14, as Python 3.11
}

// The code point ending just before byte i (a UTF-8 continuation walk back).
bool IsDigitBefore(std::string_view s, size_t i) {
  size_t j = i - 1;
  while (j > 0 && (static_cast<unsigned char>(s[j]) & 0xC0) == 0x80 && i - j < 4) --j;
  return IsDigitAt(s, j);
}

// Python's str.isspace(), which str.split() splits on (common/py_str.h).
// Returns the byte length of the space at i, 0 if none.
int SpaceAt(std::string_view s, size_t i) {
  const auto [cp, len] = CodePointAt(s, i);
  return IsPySpace(cp) ? static_cast<int>(len) : 0;
}

// Python's str.lower() (common/py_str.h); plain ASCII words stay on the fast path.
std::string Lower(std::string word) {
  bool ascii = true;
  for (char& c : word) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  }
  return ascii ? word : PyLowerUtf8(word);
}

}  // namespace

std::string VqaProcessPunctuation(std::string_view in) {
  // re.search(r"(\d)(\,)(\d)", inText): a comma between two digits.
  bool comma_between_digits = false;
  for (size_t i = 1; i + 1 < in.size(); ++i)
    if (in[i] == ',' && IsDigitBefore(in, i) && IsDigitAt(in, i + 1)) comma_between_digits = true;
  std::string out(in);
  for (char p : kPunct) {
    const std::string p_space = std::string(1, p) + ' ';
    const std::string space_p = std::string(" ") + p;
    const bool strip = in.find(p_space) != std::string_view::npos ||
                       in.find(space_p) != std::string_view::npos || comma_between_digits;
    std::string next;
    next.reserve(out.size());
    for (char c : out) {
      if (c != p) next.push_back(c);
      else if (!strip) next.push_back(' ');
    }
    out.swap(next);
  }
  // periodStrip "(?!<=\d)(\.)(?!\d)": a period not followed by a digit.
  std::string result;
  result.reserve(out.size());
  int removed = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '.' && removed < 32 && !(i + 1 < out.size() && IsDigitAt(out, i + 1))) {
      ++removed;
      continue;
    }
    result.push_back(out[i]);
  }
  return result;
}

std::string VqaProcessDigitArticle(std::string_view in) {
  std::vector<std::string> words;
  std::string word;
  auto flush = [&] {
    if (word.empty()) return;
    word = Lower(std::move(word));
    auto m = ManualMap().find(word);
    std::string w = m == ManualMap().end() ? word : std::string(m->second);
    if (w != "a" && w != "an" && w != "the") words.push_back(std::move(w));
    word.clear();
  };
  for (size_t i = 0; i < in.size();) {
    if (const int n = SpaceAt(in, i)) {
      flush();
      i += n;
    } else {
      word.push_back(in[i++]);
    }
  }
  flush();
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    auto c = Contractions().find(words[i]);
    if (i) out.push_back(' ');
    out += c == Contractions().end() ? words[i] : std::string(c->second);
  }
  return out;
}

std::string NormalizeVqaAnswer(std::string_view answer) {
  std::string s = VqaProcessDigitArticle(VqaProcessPunctuation(answer));
  std::string out;
  out.reserve(s.size());
  for (char c : s)
    if (c != ',') out.push_back(c);
  return out;
}

double VqaScore(int count) {
  if (count <= 0) return 0.0;
  if (count == 1) return 0.3;
  if (count == 2) return 0.6;
  if (count == 3) return 0.9;
  return 1.0;
}

}  // namespace uniter::converters

#include "tokenizer/bert_tokenizer.h"

#include <array>
#include <filesystem>

#include "common/error.h"
#include "tokenizer/internal/unicode_props.h"
#include "common/utf8.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"

namespace uniter::tokenizer {

using internal::CharFlags;

namespace {

// BasicTokenizer's default never_split.
constexpr std::array<std::u32string_view, 5> kNeverSplit = {U"[UNK]", U"[SEP]", U"[PAD]", U"[CLS]",
                                                            U"[MASK]"};

bool IsNeverSplit(std::u32string_view token) {
  for (auto t : kNeverSplit)
    if (t == token) return true;
  return false;
}

}  // namespace

std::unique_ptr<BertTokenizer> BertTokenizer::Load(const TokenizerOptions& options, bool fast_path) {
  const std::string& path = options.vocab_path;
  WordPieceConfig config;
  std::optional<bool> file_lower;
  const bool json = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  Vocab vocab = json ? Vocab::FromTokenizerJson(path, &config, &file_lower) : Vocab::FromTxt(path);
  const std::string name = TokenizerNameFromPath(path);
  bool lower = name.find("uncased") != std::string::npos;
  if (file_lower) lower = *file_lower;
  if (options.lower) lower = *options.lower;
  try {
    return std::make_unique<BertTokenizer>(std::move(vocab), config, lower, name, fast_path);
  } catch (const Error& e) {
    throw FormatError(e.message(), path);
  }
}

BertTokenizer::BertTokenizer(Vocab vocab, const WordPieceConfig& config, bool lower, std::string name,
                             bool fast_path)
    : vocab_(std::move(vocab)),
      wordpiece_(vocab_, config),
      lower_(lower),
      name_(std::move(name)),
      fast_path_(fast_path) {
  special_.unk = wordpiece_.unk_id();
  special_.cls = vocab_.TokenToId("[CLS]");
  special_.sep = vocab_.TokenToId("[SEP]");
  special_.pad = vocab_.TokenToId("[PAD]");
  special_.mask = vocab_.TokenToId("[MASK]");
  for (int b = 0; b < 128; ++b) {
    ascii_flags_[b] = CharFlags(static_cast<char32_t>(b)) & (internal::kPySpace | internal::kDrop | internal::kPunct);
    ascii_map_[b] = static_cast<uint8_t>((lower_ && b >= 'A' && b <= 'Z') ? b + 32 : b);
  }
}

const std::string& BertTokenizer::IdToToken(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= vocab_.size())
    throw Error("token id " + std::to_string(id) + " out of range [0, " + std::to_string(vocab_.size()) + ")",
                name_);
  return vocab_.IdToToken(id);
}

std::vector<int32_t> BertTokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 4 + 4);
  if (fast_path_) {
    EncodeFused(text, &ids);
  } else {
    EncodeStaged(text, &ids);
  }
  return ids;
}

std::vector<std::string> BertTokenizer::Tokenize(std::string_view text) const {
  const std::vector<int32_t> ids = Encode(text);
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) tokens.push_back(vocab_.IdToToken(id));
  return tokens;
}

// ---- staged path -------------------------------------------------------

void BertTokenizer::EncodeStaged(std::string_view text, std::vector<int32_t>* ids) const {
  for (std::string_view word : SplitWords(text)) EncodeWordStaged(word, ids);
}

void BertTokenizer::EncodeWordStaged(std::string_view word, std::vector<int32_t>* ids) const {
  // BasicTokenizer.tokenize
  const std::u32string text = BertNormalizer::PadChineseChars(BertNormalizer::CleanText(DecodeUtf8(word)));
  for (const std::u32string& token : WhitespaceTokenize(text)) {
    std::vector<std::u32string> pieces;
    if (IsNeverSplit(token)) {
      pieces.push_back(token);
    } else {
      pieces = SplitOnPunctuation(lower_ ? BertNormalizer::LowerStripAccents(token) : token);
    }
    // whitespace_tokenize(" ".join(split_tokens)), then WordpieceTokenizer
    for (const std::u32string& piece : pieces)
      for (const std::u32string& w : WhitespaceTokenize(piece)) wordpiece_.Tokenize(EncodeUtf8(w), ids);
  }
}

// ---- fused path --------------------------------------------------------

bool BertTokenizer::NeverSplitAt(std::string_view text, size_t i) const {
  // The characters from text[i] on, without the ones _clean_text drops (so
  // "[CLS\x01]" counts), stopping at whitespace.
  char buf[8];
  size_t m = 0;
  for (size_t len = 0; i < text.size() && m < sizeof buf; i += len) {
    const char32_t c = DecodeUtf8(text, i, &len);
    const uint8_t f = CharFlags(c);
    if (f & internal::kPySpace) break;
    if (f & internal::kDrop) continue;
    if (c >= 0x80) break;
    buf[m++] = static_cast<char>(c);
  }
  const std::string_view got(buf, m);
  for (std::string_view t : {"[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"})
    if (got.substr(0, t.size()) == t) return true;
  return false;
}

void BertTokenizer::EncodeFused(std::string_view text, std::vector<int32_t>* ids) const {
  using namespace internal;  // NOLINT: flag names
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  WordPiece::State st;
  bool in_piece = false;
  auto end_piece = [&] {
    if (in_piece) wordpiece_.End(&st, ids);
    in_piece = false;
  };
  auto feed_cp = [&](char32_t c) {  // one non-punctuation code point into the current piece
    if (!in_piece) {
      wordpiece_.Begin(&st, *ids);
      in_piece = true;
    }
    uint8_t buf[4];
    int m = 0;
    if (c < 0x80) {
      buf[m++] = static_cast<uint8_t>(c);
    } else if (c < 0x800) {
      buf[m++] = static_cast<uint8_t>(0xC0 | (c >> 6));
      buf[m++] = static_cast<uint8_t>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      buf[m++] = static_cast<uint8_t>(0xE0 | (c >> 12));
      buf[m++] = static_cast<uint8_t>(0x80 | ((c >> 6) & 0x3F));
      buf[m++] = static_cast<uint8_t>(0x80 | (c & 0x3F));
    } else {
      buf[m++] = static_cast<uint8_t>(0xF0 | (c >> 18));
      buf[m++] = static_cast<uint8_t>(0x80 | ((c >> 12) & 0x3F));
      buf[m++] = static_cast<uint8_t>(0x80 | ((c >> 6) & 0x3F));
      buf[m++] = static_cast<uint8_t>(0x80 | (c & 0x3F));
    }
    for (int k = 0; k < m; ++k) wordpiece_.Feed(&st, buf[k], ids);
    ++st.chars;
  };
  auto emit_cp = [&](char32_t c) {  // a normalized code point: punctuation is its own piece
    if (CharFlags(c) & kPunct) {
      end_piece();
      feed_cp(c);
      end_piece();
    } else {
      feed_cp(c);
    }
  };

  size_t i = 0;
  while (i < n) {
    const size_t word_start = i;
    const size_t mark = ids->size();
    bool bail = false;
    size_t space_len = 0;  // length of the whitespace character that ended the word
    while (i < n) {
      const uint8_t b = s[i];
      if (b < 0x80) {
        const uint8_t f = ascii_flags_[b];
        if (f == 0) {  // letters and digits: the hot loop
          if (!in_piece) {
            wordpiece_.Begin(&st, *ids);
            in_piece = true;
          }
          wordpiece_.Feed(&st, ascii_map_[b], ids);
          ++st.chars;
          ++i;
          continue;
        }
        if (f & kPySpace) {
          space_len = 1;
          break;
        }
        ++i;
        if (f & kDrop) continue;
        if (b == '[' && NeverSplitAt(text, i - 1)) {
          bail = true;
          break;
        }
        end_piece();
        feed_cp(b);
        end_piece();
        continue;
      }
      size_t len;
      const char32_t c = DecodeUtf8(text, i, &len);
      const uint8_t f = CharFlags(c);
      if (f & kPySpace) {
        space_len = len;
        break;
      }
      i += len;
      if (f & kDrop) continue;  // also every ill-formed sequence (U+FFFD)
      if (lower_ && (f & kBailLower)) {
        bail = true;
        break;
      }
      if (f & kCjk) {
        end_piece();
        if (lower_ && (f & kMapped)) {
          char32_t out[8];
          const int m = LowerStripOne(c, out);
          for (int k = 0; k < m; ++k) emit_cp(out[k]);
        } else {
          feed_cp(c);
        }
        end_piece();
      } else if (lower_ && (f & kMapped)) {
        char32_t out[8];
        const int m = LowerStripOne(c, out);
        for (int k = 0; k < m; ++k) emit_cp(out[k]);
      } else if (f & kPunct) {
        end_piece();
        feed_cp(c);
        end_piece();
      } else {
        if (!in_piece) {
          wordpiece_.Begin(&st, *ids);
          in_piece = true;
        }
        for (size_t k = i - len; k < i; ++k) wordpiece_.Feed(&st, s[k], ids);
        ++st.chars;
      }
    }
    end_piece();
    if (bail) {
      ids->resize(mark);
      size_t j = word_start, len = 0;
      for (; j < n; j += len)
        if (CharFlags(DecodeUtf8(text, j, &len)) & kPySpace) break;
      EncodeWordStaged(text.substr(word_start, j - word_start), ids);
      i = j;
      space_len = 0;
      if (i < n) DecodeUtf8(text, i, &space_len);
    }
    i += space_len;
  }
}

}  // namespace uniter::tokenizer

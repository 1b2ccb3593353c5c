#include "tokenizer/models/sentencepiece.h"

#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>

#include "common/error.h"
#include "common/plugin.h"

namespace uniter::tokenizer {

namespace {

using IdSink = void (*)(void* ctx, const int* ids, size_t n);
using PieceSink = void (*)(void* ctx, const char* piece, size_t len);

// The shim's entry points.
struct Shim {
  void* (*load)(const char*, char*, size_t);
  void (*free)(void*);
  int (*piece_size)(const void*);
  const char* (*id_to_piece)(const void*, int, size_t*);
  int (*special)(const void*, int);
  int (*encode_ids)(const void*, const char*, size_t, IdSink, void*, char*, size_t);
  int (*encode_pieces)(const void*, const char*, size_t, PieceSink, void*, char*, size_t);
};

const PluginSpec& ShimSpec() {
  static const PluginSpec spec{UNITER_SPM_SHIM_NAME, "UNITER_SPM_SHIM", UNITER_SPM_SHIM_BUILD_PATH,
                               "the SentencePiece shim", RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND};
  return spec;
}

const Shim& GetShim() {
  static std::once_flag once;
  static Shim shim;
  static std::string error;
  std::call_once(once, [] {
    void* h = nullptr;
    try {
      h = LoadPlugin(ShimSpec());
    } catch (const Error& e) {
      error = e.what();
      return;
    }
    auto sym = [&](const char* name) {
      void* p = dlsym(h, name);
      if (!p) error = std::string("SentencePiece shim lacks ") + name;
      return p;
    };
    shim.load = reinterpret_cast<decltype(shim.load)>(sym("uniter_spm_load"));
    shim.free = reinterpret_cast<decltype(shim.free)>(sym("uniter_spm_free"));
    shim.piece_size = reinterpret_cast<decltype(shim.piece_size)>(sym("uniter_spm_piece_size"));
    shim.id_to_piece = reinterpret_cast<decltype(shim.id_to_piece)>(sym("uniter_spm_id_to_piece"));
    shim.special = reinterpret_cast<decltype(shim.special)>(sym("uniter_spm_special"));
    shim.encode_ids = reinterpret_cast<decltype(shim.encode_ids)>(sym("uniter_spm_encode_ids"));
    shim.encode_pieces = reinterpret_cast<decltype(shim.encode_pieces)>(sym("uniter_spm_encode_pieces"));
  });
  if (!error.empty()) throw Error(error);
  return shim;
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& model_path)
    : name_(TokenizerNameFromPath(model_path)), path_(model_path) {
  if (!std::filesystem::is_regular_file(model_path) || access(model_path.c_str(), R_OK) != 0)
    throw IoError("cannot open SentencePiece model", model_path);
  const Shim& shim = GetShim();
  char err[512] = {0};
  model_ = shim.load(model_path.c_str(), err, sizeof err);
  if (!model_) throw FormatError(std::string("not a SentencePiece model: ") + err, model_path);
  const int n = shim.piece_size(model_);
  pieces_.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    size_t len = 0;
    const char* p = shim.id_to_piece(model_, i, &len);
    pieces_.emplace_back(p, len);
    ids_.emplace(pieces_.back(), i);
  }
  auto piece_or = [&](std::string_view piece, int fallback) {
    const int32_t id = TokenToId(piece);
    return id >= 0 ? id : static_cast<int32_t>(fallback);
  };
  special_.unk = shim.special(model_, 0);
  special_.cls = piece_or("[CLS]", shim.special(model_, 1));
  special_.sep = piece_or("[SEP]", shim.special(model_, 2));
  special_.pad = piece_or("[PAD]", shim.special(model_, 3));
  special_.mask = piece_or("[MASK]", -1);
}

SentencePieceTokenizer::~SentencePieceTokenizer() {
  if (model_) GetShim().free(model_);
}

std::vector<int32_t> SentencePieceTokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> ids;
  char err[512] = {0};
  const IdSink sink = [](void* ctx, const int* p, size_t n) {
    static_cast<std::vector<int32_t>*>(ctx)->assign(p, p + n);
  };
  if (GetShim().encode_ids(model_, text.data(), text.size(), sink, &ids, err, sizeof err) != 0)
    throw FormatError(std::string("SentencePiece encode failed: ") + err, path_);
  return ids;
}

std::vector<std::string> SentencePieceTokenizer::Tokenize(std::string_view text) const {
  std::vector<std::string> pieces;
  char err[512] = {0};
  const PieceSink sink = [](void* ctx, const char* p, size_t n) {
    static_cast<std::vector<std::string>*>(ctx)->emplace_back(p, n);
  };
  if (GetShim().encode_pieces(model_, text.data(), text.size(), sink, &pieces, err, sizeof err) != 0)
    throw FormatError(std::string("SentencePiece encode failed: ") + err, path_);
  return pieces;
}

int32_t SentencePieceTokenizer::TokenToId(std::string_view token) const {
  auto it = ids_.find(token);
  return it == ids_.end() ? -1 : it->second;
}

const std::string& SentencePieceTokenizer::IdToToken(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= pieces_.size())
    throw Error("token id " + std::to_string(id) + " out of range [0, " + std::to_string(pieces_.size()) + ")",
                path_);
  return pieces_[static_cast<size_t>(id)];
}

}  // namespace uniter::tokenizer

// A C interface to libsentencepiece, built as its own shared object and
// loaded with dlopen(RTLD_LOCAL | RTLD_DEEPBIND) by sentencepiece.cc.
//
// Why: Debian's libsentencepiece embeds a private protobuf 3.14 and exports
// its symbols. Linked into a process that also uses the system libprotobuf
// (3.21, featdb's codec), one copy interposes the other and the process dies
// in static initialisation or on the first model load. Loaded deep-bound
// and local, sentencepiece keeps its protobuf to itself.
// Only plain C types cross this boundary.
#include <sentencepiece_processor.h>

#include <cstring>
#include <string>
#include <vector>

namespace {

void SetError(const std::string& msg, char* err, size_t err_len) {
  if (!err || err_len == 0) return;
  const size_t n = std::min(msg.size(), err_len - 1);
  std::memcpy(err, msg.data(), n);
  err[n] = '\0';
}

}  // namespace

extern "C" {

using UniterSpmIdSink = void (*)(void* ctx, const int* ids, size_t n);
using UniterSpmPieceSink = void (*)(void* ctx, const char* piece, size_t len);

__attribute__((visibility("default"))) void* uniter_spm_load(const char* path, char* err, size_t err_len) {
  auto* sp = new sentencepiece::SentencePieceProcessor();
  const auto status = sp->Load(path);
  if (!status.ok()) {
    SetError(status.ToString(), err, err_len);
    delete sp;
    return nullptr;
  }
  return sp;
}

__attribute__((visibility("default"))) void uniter_spm_free(void* sp) {
  delete static_cast<sentencepiece::SentencePieceProcessor*>(sp);
}

__attribute__((visibility("default"))) int uniter_spm_piece_size(const void* sp) {
  return static_cast<const sentencepiece::SentencePieceProcessor*>(sp)->GetPieceSize();
}

// The piece's bytes stay valid while the model is loaded.
__attribute__((visibility("default"))) const char* uniter_spm_id_to_piece(const void* sp, int id, size_t* len) {
  const std::string& p = static_cast<const sentencepiece::SentencePieceProcessor*>(sp)->IdToPiece(id);
  *len = p.size();
  return p.data();
}

__attribute__((visibility("default"))) int uniter_spm_special(const void* sp, int which) {
  const auto* s = static_cast<const sentencepiece::SentencePieceProcessor*>(sp);
  switch (which) {
    case 0: return s->unk_id();
    case 1: return s->bos_id();
    case 2: return s->eos_id();
    case 3: return s->pad_id();
    default: return -1;
  }
}

__attribute__((visibility("default"))) int uniter_spm_encode_ids(const void* sp, const char* text, size_t len,
                                                                  UniterSpmIdSink sink, void* ctx, char* err,
                                                                  size_t err_len) {
  std::vector<int> ids;
  const auto status =
      static_cast<const sentencepiece::SentencePieceProcessor*>(sp)->Encode(std::string_view(text, len), &ids);
  if (!status.ok()) {
    SetError(status.ToString(), err, err_len);
    return -1;
  }
  sink(ctx, ids.data(), ids.size());
  return 0;
}

__attribute__((visibility("default"))) int uniter_spm_encode_pieces(const void* sp, const char* text, size_t len,
                                                                     UniterSpmPieceSink sink, void* ctx, char* err,
                                                                     size_t err_len) {
  std::vector<std::string> pieces;
  const auto status =
      static_cast<const sentencepiece::SentencePieceProcessor*>(sp)->Encode(std::string_view(text, len), &pieces);
  if (!status.ok()) {
    SetError(status.ToString(), err, err_len);
    return -1;
  }
  for (const auto& p : pieces) sink(ctx, p.data(), p.size());
  return 0;
}

}  // extern "C"

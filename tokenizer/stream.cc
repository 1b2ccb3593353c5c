#include "tokenizer/stream.h"

#include <tbb/parallel_for.h>
#include <tbb/parallel_pipeline.h>
#include <tbb/task_arena.h>

#include <cerrno>
#include <charconv>
#include <memory>

#include "common/error.h"
#include "common/py_json.h"
#include "tokenizer/post_processor.h"

namespace uniter::tokenizer {

namespace {

void AppendInt(int32_t v, std::string* out) {
  char buf[16];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

// A chunk of whole lines moving through the pipeline.
struct Chunk {
  std::string data;                     // the lines, '\n'-terminated except maybe the last
  std::vector<std::string_view> lines;  // views into data, without '\n'
  std::string out;
};

}  // namespace

OutputFormat ParseOutputFormat(std::string_view name) {
  if (name == "ids") return OutputFormat::kIds;
  if (name == "tokens") return OutputFormat::kTokens;
  if (name == "jsonl") return OutputFormat::kJsonl;
  throw UsageError("unknown output format '" + std::string(name) + "' (ids, tokens or jsonl)");
}

void FormatLine(const Tokenizer& tokenizer, const std::vector<int32_t>& ids, OutputFormat format,
                std::string* out) {
  switch (format) {
    case OutputFormat::kIds:
      for (size_t k = 0; k < ids.size(); ++k) {
        if (k) out->push_back(' ');
        AppendInt(ids[k], out);
      }
      break;
    case OutputFormat::kTokens:
      for (size_t k = 0; k < ids.size(); ++k) {
        if (k) out->push_back(' ');
        out->append(tokenizer.IdToToken(ids[k]));
      }
      break;
    case OutputFormat::kJsonl:
      out->append("{\"ids\":[");
      for (size_t k = 0; k < ids.size(); ++k) {
        if (k) out->push_back(',');
        AppendInt(ids[k], out);
      }
      out->append("],\"tokens\":[");
      for (size_t k = 0; k < ids.size(); ++k) {
        if (k) out->push_back(',');
        AppendPyJsonString(out, tokenizer.IdToToken(ids[k]), /*ensure_ascii=*/false);
      }
      out->append("]}");
      break;
  }
}

namespace {

// Reads whole lines in chunks: up to chunk_lines lines, cut at the first
// line end past chunk_bytes; a longer line is read to its end.
class ChunkReader {
 public:
  ChunkReader(std::FILE* in, const std::string& name, const StreamOptions& options)
      : in_(in), name_(name), options_(options) {}

  // Null at the end of input.
  std::shared_ptr<Chunk> Next() {
    if (eof_ && carry_.empty()) return nullptr;
    auto chunk = std::make_shared<Chunk>();
    std::string& d = chunk->data;
    d.swap(carry_);
    size_t scanned = 0, count = 0, cut = std::string::npos;
    for (;;) {
      for (size_t nl; cut == std::string::npos && (nl = d.find('\n', scanned)) != std::string::npos;) {
        scanned = nl + 1;
        ++count;
        if (count >= options_.chunk_lines || scanned >= options_.chunk_bytes) cut = scanned;
      }
      if (cut != std::string::npos) break;
      scanned = d.size();
      if (eof_) {
        cut = d.size();
        break;
      }
      const size_t old = d.size();
      d.resize(old + kBlock);
      const size_t got = std::fread(d.data() + old, 1, kBlock, in_);
      d.resize(old + got);
      if (got < kBlock) {
        if (std::ferror(in_)) ThrowErrno("read failed", name_);
        eof_ = true;
      }
    }
    carry_.assign(d, cut, std::string::npos);
    d.resize(cut);
    for (size_t pos = 0; pos < d.size();) {
      size_t nl = d.find('\n', pos);
      if (nl == std::string::npos) nl = d.size();
      chunk->lines.emplace_back(d.data() + pos, nl - pos);
      pos = nl + 1;
    }
    if (chunk->lines.empty()) return eof_ && carry_.empty() ? nullptr : chunk;
    return chunk;
  }

 private:
  static constexpr size_t kBlock = 1 << 16;
  std::FILE* in_;
  const std::string& name_;
  const StreamOptions& options_;
  std::string carry_;
  bool eof_ = false;
};

}  // namespace

StreamStats TokenizeStream(const Tokenizer& tokenizer, std::FILE* in, const std::string& in_name,
                           std::FILE* out, const StreamOptions& options) {
  std::unique_ptr<BertPostProcessor> post;
  if (options.add_special) post = std::make_unique<BertPostProcessor>(tokenizer.special());
  StreamStats stats;
  ChunkReader reader(in, in_name, options);
  // A few chunks in flight per thread keep every core busy while bounding memory.
  const size_t live = static_cast<size_t>(tbb::this_task_arena::max_concurrency()) * 2 + 1;
  tbb::parallel_pipeline(
      live,
      tbb::make_filter<void, std::shared_ptr<Chunk>>(
          tbb::filter_mode::serial_in_order,
          [&](tbb::flow_control& fc) {
            auto chunk = reader.Next();
            if (!chunk) fc.stop();
            return chunk;
          }) &
          tbb::make_filter<std::shared_ptr<Chunk>, std::shared_ptr<Chunk>>(
              tbb::filter_mode::parallel,
              [&](std::shared_ptr<Chunk> chunk) {
                // Blocks of lines format into their own buffers, joined in order.
                constexpr size_t kBlock = 256;
                const size_t nblocks = (chunk->lines.size() + kBlock - 1) / kBlock;
                std::vector<std::string> parts(nblocks);
                tbb::parallel_for(size_t{0}, nblocks, [&](size_t b) {
                  std::string& part = parts[b];
                  part.reserve(kBlock * 64);
                  const size_t end = std::min((b + 1) * kBlock, chunk->lines.size());
                  for (size_t k = b * kBlock; k < end; ++k) {
                    std::vector<int32_t> ids = tokenizer.Encode(chunk->lines[k]);
                    if (post) ids = post->Apply(ids);
                    FormatLine(tokenizer, ids, options.format, &part);
                    part.push_back('\n');
                  }
                });
                size_t total = 0;
                for (const auto& p : parts) total += p.size();
                chunk->out.reserve(total);
                for (const auto& p : parts) chunk->out += p;
                return chunk;
              }) &
          tbb::make_filter<std::shared_ptr<Chunk>, void>(
              tbb::filter_mode::serial_in_order, [&](std::shared_ptr<Chunk> chunk) {
                if (std::fwrite(chunk->out.data(), 1, chunk->out.size(), out) != chunk->out.size())
                  ThrowErrno("write failed", "output");
                stats.lines += chunk->lines.size();
                stats.bytes += chunk->data.size();
              }));
  if (std::fflush(out) != 0) ThrowErrno("write failed", "output");
  return stats;
}

}  // namespace uniter::tokenizer

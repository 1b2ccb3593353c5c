// The shared engine: Task::Next (serial, in order) → Task::Convert and
// tokenization (parallel, TBB) → one ordered writer stage that owns the dbs,
// the sidecars and the rejects file. Output depends only on the inputs.
#include <tbb/global_control.h>
#include <tbb/info.h>
#include <tbb/parallel_pipeline.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <unordered_set>
#include <vector>

#include "common/error.h"
#include "common/progress.h"
#include "common/rejects.h"
#include "common/version.h"
#include "converters/convert.h"
#include "converters/internal/json_writer.h"
#include "converters/internal/readers.h"
#include "converters/internal/task.h"
#include "featdb/txt_db.h"
#include "tokenizer/tokenizer.h"

namespace uniter::converters {

namespace fs = std::filesystem;

std::string TaskContext::Flag(const std::string& name, const std::string& fallback) const {
  auto it = options->task_options.find(name);
  if (it == options->task_options.end() || it->second.empty()) return fallback;
  return it->second.back();
}

std::vector<std::string> TaskContext::FlagList(const std::string& name) const {
  auto it = options->task_options.find(name);
  return it == options->task_options.end() ? std::vector<std::string>{} : it->second;
}

const std::vector<TaskInfo>& Tasks() {
  static const std::vector<TaskInfo>* tasks = new std::vector<TaskInfo>{
#define UNITER_CONVERTER(Name, name) Name##TaskInfo(),
#include "converters/converter_list.inc"
#undef UNITER_CONVERTER
  };
  return *tasks;
}

namespace {

std::unique_ptr<Task> MakeTask(const std::string& name) {
#define UNITER_CONVERTER(Name, task_name) \
  if (name == task_name) return Make##Name##Task();
#include "converters/converter_list.inc"
#undef UNITER_CONVERTER
  std::string known;
  for (const auto& t : Tasks()) known += (known.empty() ? "" : ", ") + t.name;
  throw UsageError("unknown task '" + name + "' (known: " + known + ")");
}

// A set of names (a db's keys, its image names): open addressing over indices into a store, probed
// with the hash the parallel stage computed, so the serial writer stage
// neither hashes a key nor allocates per key.
class KeySet {
 public:
  struct Slot {
    size_t hash = 0;
    uint32_t index = 0;  // 1 + index into the store; 0 = empty
  };
  // The slot holding `key`, or the empty slot where it goes (then Fill it
  // before the next Find).
  // `name_at(i)` is the name stored at index i.
  template <typename NameAt>
  Slot& Find(std::string_view key, size_t hash, NameAt name_at) {
    if ((count_ + 1) * 2 > slots_.size()) Grow();
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.index == 0 || (s.hash == hash && std::string_view(name_at(s.index - 1)) == key)) return s;
    }
  }
  void Fill(Slot& s, size_t hash, uint32_t index) {
    s = {hash, index + 1};
    ++count_;
  }

 private:
  void Grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(std::max<size_t>(1024, old.size() * 2), Slot{});
    const size_t mask = slots_.size() - 1;
    for (const Slot& o : old) {
      if (o.index == 0) continue;
      size_t i = o.hash & mask;
      while (slots_[i].index != 0) i = (i + 1) & mask;
      slots_[i] = o;
    }
  }

  std::vector<Slot> slots_;
  size_t count_ = 0;
};

// Per-db state of the writer stage. Sidecars are kept in insertion order and
// written as Python's json.dump would write UNITER's dicts.
struct DbState {
  std::string dir;
  std::unique_ptr<featdb::TxtDbWriter> writer;
  std::vector<std::pair<std::string, JsonObjectWriter>> lens;  // "id2len" → {key: len}
  JsonObjectWriter txt2img;
  // Keys seen, in order, raw (for duplicates) and as JSON text (img2txts).
  std::vector<std::string> key_store;
  std::vector<std::string> json_keys;
  KeySet keys;
  // img2txts: image name → its keys (indices into key_store), first-seen order.
  struct Img {
    std::string name;
    std::vector<uint32_t> keys;
  };
  KeySet img_set;  // over imgs
  std::vector<Img> imgs;
  size_t uncommitted = 0;
  std::chrono::steady_clock::time_point last_commit = std::chrono::steady_clock::now();

  JsonObjectWriter& Lens(const std::string& name) {
    for (auto& [n, w] : lens)
      if (n == name) return w;
    lens.emplace_back(name, JsonObjectWriter());
    return lens.back().second;
  }
};

// Commits at most once a second (or every 100k records): each commit syncs
// the disk, and a crash loses at most that much work (--resume redoes it).
constexpr auto kCommitInterval = std::chrono::seconds(1);
constexpr size_t kMaxUncommitted = 100000;

// The units of one pipeline token, and what the parallel stage made of them.
struct Batch {
  std::vector<Unit> units;
  std::vector<std::vector<Example>> examples;
  std::vector<std::optional<Reject>> rejects;
};

nlohmann::json BuildMeta(const ConvertOptions& o, const tokenizer::Tokenizer& toker, const Task& task,
                         const std::string& db) {
  nlohmann::json meta;
  const tokenizer::SpecialIds sp = toker.special();
  const std::string name = toker.Name();
  // UNITER's prepro writes opts (annotations, missing_imgs, output, task, toker)
  // plus tokenizer, UNK/CLS/SEP/MASK and v_range; its VQA/VE/VCR/pretrain
  // datasets read `bert`, RE reads `toker`.
  meta["task"] = o.task;
  meta["annotations"] = o.annotations;
  meta["missing_imgs"] = o.missing_imgs.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.missing_imgs);
  meta["output"] = o.output;
  meta["toker"] = name;
  meta["bert"] = name;
  meta["tokenizer"] = name;
  meta["vocab"] = o.vocab.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.vocab);
  meta["spm"] = o.spm.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.spm);
  meta["do_lower_case"] = toker.lower_case();
  meta["UNK"] = sp.unk;
  meta["CLS"] = sp.cls;
  meta["SEP"] = sp.sep;
  meta["MASK"] = sp.mask;
  meta["PAD"] = sp.pad;
  int32_t first = toker.TokenToId("!");
  if (first < 0) first = std::max({sp.unk, sp.cls, sp.sep, sp.mask, sp.pad}) + 1;
  meta["v_range"] = {first, static_cast<int64_t>(toker.VocabSize())};
  meta["options"] = task.MetaOptions(db);
  meta["converter"] = std::string("uniter-cpp ") + UNITER_VERSION;
  return meta;
}

}  // namespace

ConvertSummary RunConvert(const ConvertOptions& options) {
  if (options.vocab.empty() == options.spm.empty())
    throw UsageError("give exactly one of --vocab FILE and --spm MODEL");
  tokenizer::TokenizerOptions to;
  to.vocab_path = options.vocab;
  to.spm_path = options.spm;
  to.lower = options.lower;
  std::unique_ptr<tokenizer::Tokenizer> toker = tokenizer::CreateTokenizer(to);
  return RunConvert(options, *toker);
}

ConvertSummary RunConvert(const ConvertOptions& options, const tokenizer::Tokenizer& toker) {
  const auto start = std::chrono::steady_clock::now();
  if (options.output.empty()) throw UsageError("--output DB_DIR is required");
  if (options.annotations.empty()) throw UsageError("--ann FILE is required");
  if (options.resume && options.force) throw UsageError("--resume and --force exclude each other");
  for (const auto& a : options.annotations)
    if (!fs::exists(a)) throw IoError("no such file", a);

  std::unique_ptr<Task> task = MakeTask(options.task);
  TaskContext ctx;
  ctx.options = &options;
  ctx.toker = &toker;
  task->Prepare(ctx);

  std::unordered_set<std::string> missing;
  if (!options.missing_imgs.empty())
    for (auto& n : ReadNameList(options.missing_imgs)) missing.insert(std::move(n));

  // Open every db first, so an existing one is refused before anything is written.
  std::map<std::string, DbState> dbs;
  featdb::TxtDbWriterOptions wo;
  wo.resume = options.resume;
  wo.force = options.force;
  wo.commit_every = std::numeric_limits<size_t>::max();  // we commit (see kCommitInterval)
  ConvertSummary summary;
  for (const std::string& name : task->Dbs()) {
    DbState& st = dbs[name];
    st.dir = name.empty() ? options.output : (fs::path(options.output) / name).string();
    st.writer = std::make_unique<featdb::TxtDbWriter>(st.dir, wo);
    summary.dbs.push_back(st.dir);
  }
  summary.rejects_path = options.rejects.empty() ? (fs::path(options.output) / "rejects.jsonl").string()
                                                 : options.rejects;
  // A fresh run must not leave an earlier run's rejects behind.
  if (!options.resume) fs::remove(summary.rejects_path);
  RejectsFile rejects(summary.rejects_path, options.resume);

  const int threads = options.threads > 0 ? options.threads : tbb::info::default_concurrency();
  tbb::global_control gc(tbb::global_control::max_allowed_parallelism, static_cast<size_t>(threads));
  Progress progress("convert " + options.task, 0, options.quiet);

  constexpr size_t kUnitsPerBatch = 128;
  const bool writes_txt2img = task->WritesTxt2Img();
  bool done = false;
  tbb::parallel_pipeline(
      static_cast<size_t>(threads) * 4,
      tbb::make_filter<void, Batch*>(
          tbb::filter_mode::serial_in_order,
          [&](tbb::flow_control& fc) -> Batch* {
            if (done) {
              fc.stop();
              return nullptr;
            }
            auto batch = std::make_unique<Batch>();
            batch->units.reserve(kUnitsPerBatch);
            while (batch->units.size() < kUnitsPerBatch) {
              Unit u;
              if (!task->Next(&u)) {
                done = true;
                break;
              }
              batch->units.push_back(std::move(u));
            }
            if (batch->units.empty()) {
              fc.stop();
              return nullptr;
            }
            return batch.release();
          }) &
          tbb::make_filter<Batch*, Batch*>(
              tbb::filter_mode::parallel,
              [&](Batch* b) -> Batch* {
                b->examples.resize(b->units.size());
                b->rejects.resize(b->units.size());
                for (size_t i = 0; i < b->units.size(); ++i) {
                  const Unit& u = b->units[i];
                  try {
                    task->Convert(u, &b->examples[i]);
                    // Encoding is the costly part of a record: do it here, in parallel.
                    // So is everything of the writer stage's work that does
                    // not depend on the records before: JSON text, hashes.
                    for (Example& ex : b->examples[i]) {
                      if (ex.encoded.empty()) {
                        ex.encoded = featdb::Lz4FrameCompress(featdb::EncodeMsgpack(ex.value));
                        ex.value = featdb::Value();
                      }
                      ex.key_hash = std::hash<std::string_view>{}(ex.key);
                      for (const auto& f : ex.img_fnames) ex.img_hashes.push_back(std::hash<std::string_view>{}(f));
                      AppendJsonString(&ex.json_key, ex.key);
                      if (writes_txt2img && !ex.img_fnames.empty()) {
                        if (ex.img_list) ex.json_img.push_back('[');
                        for (size_t f = 0; f < ex.img_fnames.size(); ++f) {
                          if (f) ex.json_img.append(", ");
                          AppendJsonString(&ex.json_img, ex.img_fnames[f]);
                          if (!ex.img_list) break;
                        }
                        if (ex.img_list) ex.json_img.push_back(']');
                      }
                    }
                  } catch (const Error& e) {
                    b->examples[i].clear();
                    b->rejects[i] = Reject{ctx.Annotation(u.file), u.line, e.where(), e.message()};
                  } catch (const std::exception& e) {
                    b->examples[i].clear();
                    b->rejects[i] = Reject{ctx.Annotation(u.file), u.line, "", e.what()};
                  }
                }
                return b;
              }) &
          tbb::make_filter<Batch*, Batch*>(tbb::filter_mode::serial_in_order, [&](Batch* raw) -> Batch* {
            std::unique_ptr<Batch> b(raw);
            for (size_t i = 0; i < b->units.size(); ++i) {
              if (b->rejects[i]) {
                const Reject& r = *b->rejects[i];
                if (options.strict) {
                  std::string where = r.line > 0 ? Where(r.file, r.line) : r.file;
                  if (!r.key.empty()) where += "[" + r.key + "]";
                  throw FormatError(r.reason + " (--strict)", where);
                }
                rejects.Add(r);
                continue;
              }
              for (Example& ex : b->examples[i]) {
                auto it = dbs.find(ex.db);
                if (it == dbs.end()) throw Error("internal: task wrote to undeclared db '" + ex.db + "'");
                DbState& st = it->second;
                bool drop = false;
                if (!missing.empty())
                  for (const auto& f : ex.img_fnames) drop = drop || missing.count(f);
                if (drop) {
                  ++summary.missing_images;
                  continue;
                }
                if (ex.key.empty() || ex.key.size() > 511) {  // LMDB's key size limit
                  Reject r{ctx.Annotation(b->units[i].file), b->units[i].line, ex.key.substr(0, 64),
                           "key is empty or longer than 511 bytes"};
                  if (options.strict) throw FormatError(r.reason + " (--strict)", r.file);
                  rejects.Add(r);
                  continue;
                }
                auto key_at = [&](uint32_t k) -> const std::string& { return st.key_store[k]; };
                KeySet::Slot& slot = st.keys.Find(ex.key, ex.key_hash, key_at);
                if (slot.index != 0) {
                  Reject r{ctx.Annotation(b->units[i].file), b->units[i].line, ex.key, "duplicate key"};
                  if (options.strict) throw FormatError("duplicate key '" + ex.key + "' (--strict)", r.file);
                  rejects.Add(r);
                  continue;
                }
                const auto key_index = static_cast<uint32_t>(st.key_store.size());
                st.keys.Fill(slot, ex.key_hash, key_index);
                for (const auto& [name, len] : ex.lens) st.Lens(name).AddJson(ex.json_key, len);
                if (writes_txt2img && !ex.img_fnames.empty()) {
                  st.txt2img.AddJson(ex.json_key, ex.json_img);
                  auto img_at = [&](uint32_t k) -> const std::string& { return st.imgs[k].name; };
                  for (size_t f = 0; f < ex.img_fnames.size(); ++f) {
                    KeySet::Slot& img = st.img_set.Find(ex.img_fnames[f], ex.img_hashes[f], img_at);
                    if (img.index == 0) {
                      st.img_set.Fill(img, ex.img_hashes[f], static_cast<uint32_t>(st.imgs.size()));
                      st.imgs.push_back({std::move(ex.img_fnames[f]), {}});
                    }
                    st.imgs[img.index - 1].keys.push_back(key_index);
                  }
                }
                if (options.resume && st.writer->Contains(ex.key)) {
                  ++summary.resumed;
                } else {
                  st.writer->PutRaw(ex.key, std::move(ex.encoded));
                  ++summary.written;
                  // The clock is read every 256 records: reading it per record showed in profiles.
                  if (++st.uncommitted >= kMaxUncommitted ||
                      ((st.uncommitted & 255) == 0 &&
                       std::chrono::steady_clock::now() - st.last_commit >= kCommitInterval)) {
                    st.writer->Commit();
                    st.uncommitted = 0;
                    st.last_commit = std::chrono::steady_clock::now();
                  }
                }
                st.key_store.push_back(std::move(ex.key));
                st.json_keys.push_back(std::move(ex.json_key));
                ++summary.examples;
              }
              progress.Add(1);
            }
            return b.release();
          }) &
          // Freeing a batch's strings is work the serial stage need not do.
          tbb::make_filter<Batch*, void>(tbb::filter_mode::parallel, [](Batch* b) { delete b; }));
  progress.Finish();

  for (auto& [name, st] : dbs) {
    st.writer->Commit();
    if (st.lens.empty()) st.Lens("id2len");
    for (auto& [lens_name, w] : st.lens) WriteFileAtomic(st.dir + "/" + lens_name + ".json", w.Finish());
    if (task->WritesTxt2Img()) WriteFileAtomic(st.dir + "/txt2img.json", st.txt2img.Finish());
    if (task->WritesImg2Txts()) {
      JsonObjectWriter w;
      std::string name, ids;
      for (const auto& img : st.imgs) {
        name.clear();
        AppendJsonString(&name, img.name);
        ids.clear();
        ids.push_back('[');
        for (size_t k = 0; k < img.keys.size(); ++k) {
          if (k) ids.append(", ");
          ids.append(st.json_keys[img.keys[k]]);
        }
        ids.push_back(']');
        w.AddJson(name, ids);
      }
      WriteFileAtomic(st.dir + "/img2txts.json", w.Finish());
    }
    task->Finish(name, *st.writer, rejects);
    st.writer->WriteJson("meta.json", BuildMeta(options, toker, *task, name));
    st.writer->Close();
  }
  summary.rejects = rejects.count();
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

std::string FormatSummary(const ConvertOptions& o, const ConvertSummary& s) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s: %llu examples (%llu written, %llu kept) in %.2fs, %llu rejects, %llu dropped for missing images",
                o.task.c_str(), static_cast<unsigned long long>(s.examples),
                static_cast<unsigned long long>(s.written), static_cast<unsigned long long>(s.resumed), s.seconds,
                static_cast<unsigned long long>(s.rejects), static_cast<unsigned long long>(s.missing_images));
  std::string out = buf;
  for (const auto& d : s.dbs) out += "\n  -> " + d;
  if (s.rejects) out += "\n  rejects: " + s.rejects_path;
  return out;
}

}  // namespace uniter::converters

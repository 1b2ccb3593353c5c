#include "converters/internal/stages.h"

#include <algorithm>
#include <filesystem>
#include <limits>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/py_json.h"
#include "common/version.h"
#include "converters/internal/readers.h"
#include "featdb/value.h"
#include "tokenizer/tokenizer.h"

namespace uniter::converters {
namespace {

namespace flow = tbb::flow;
namespace fs = std::filesystem;

// Commits at most once a second (or every 100k records): each commit syncs
// the disk, and a crash loses at most that much work (--resume redoes it).
constexpr auto kCommitInterval = std::chrono::seconds(1);
constexpr size_t kMaxUncommitted = 100000;

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

// The text of one record that depends on it alone: its value, JSON key and
// image names, hashes.
void PrepareExample(Example& ex, bool writes_txt2img) {
  if (ex.encoded.empty()) {
    ex.encoded = featdb::Lz4FrameCompress(featdb::EncodeMsgpack(ex.value));
    ex.value = featdb::Value();
  }
  ex.key_hash = std::hash<std::string_view>{}(ex.key);
  for (const auto& f : ex.img_fnames) ex.img_hashes.push_back(std::hash<std::string_view>{}(f));
  AppendPyJsonString(&ex.json_key, ex.key);
  if (writes_txt2img && !ex.img_fnames.empty()) {
    if (ex.img_list) ex.json_img.push_back('[');
    for (size_t f = 0; f < ex.img_fnames.size(); ++f) {
      if (f) ex.json_img.append(", ");
      AppendPyJsonString(&ex.json_img, ex.img_fnames[f]);
      if (!ex.img_list) break;
    }
    if (ex.img_list) ex.json_img.push_back(']');
  }
}

}  // namespace

ConvertBatchPtr UnitReader::operator()(tbb::flow_control& fc) {
  auto batch = std::make_shared<ConvertBatch>();
  batch->units.reserve(ConvertBatch::kUnitsPerBatch);
  while (!done_ && batch->units.size() < ConvertBatch::kUnitsPerBatch) {
    Unit u;
    if (!task_->Next(&u)) {
      done_ = true;
      break;
    }
    batch->units.push_back(std::move(u));
  }
  if (batch->units.empty()) {
    fc.stop();
    return nullptr;
  }
  batch->seq = next_seq_++;
  return batch;
}

ConvertBatchPtr ConvertWork::operator()(ConvertBatchPtr b) const {
  const bool writes_txt2img = task_->WritesTxt2Img();
  b->examples.resize(b->units.size());
  b->rejects.resize(b->units.size());
  for (size_t i = 0; i < b->units.size(); ++i) {
    const Unit& u = b->units[i];
    try {
      task_->Convert(u, &b->examples[i]);
      for (Example& ex : b->examples[i]) PrepareExample(ex, writes_txt2img);
    } catch (const Error& e) {
      b->examples[i].clear();
      b->rejects[i] = Reject{ctx_->Annotation(u.file), u.line, e.where(), e.message()};
    } catch (const std::exception& e) {
      b->examples[i].clear();
      b->rejects[i] = Reject{ctx_->Annotation(u.file), u.line, "", e.what()};
    }
  }
  return b;
}

void KeySet::Grow() {
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

// Per-db state of the writer. Sidecars are kept in insertion order and
// written as Python's json.dump would write UNITER's dicts.
struct TxtDbWriterStage::DbState {
  std::string dir;
  std::unique_ptr<featdb::TxtDbWriter> writer;
  std::vector<std::pair<std::string, JsonObjectWriter>> lens;  // "id2len" -> {key: len}
  JsonObjectWriter txt2img;
  // Keys seen, in order, raw (for duplicates) and as JSON text (img2txts).
  std::vector<std::string> key_store;
  std::vector<std::string> json_keys;
  KeySet keys;
  // img2txts: image name -> its keys (indices into key_store), first-seen order.
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

TxtDbWriterStage::TxtDbWriterStage(const ConvertOptions& options, const tokenizer::Tokenizer& toker, Task* task,
                                   const TaskContext* ctx, RejectsFile* rejects, Progress* progress,
                                   ConvertSummary* summary)
    : options_(options), toker_(toker), task_(task), ctx_(ctx), rejects_(rejects), progress_(progress),
      summary_(summary) {
  if (!options.missing_imgs.empty())
    for (auto& n : ReadNameList(options.missing_imgs)) missing_.insert(std::move(n));
  featdb::TxtDbWriterOptions wo;
  wo.resume = options.resume;
  wo.force = options.force;
  wo.commit_every = std::numeric_limits<size_t>::max();  // we commit (see kCommitInterval)
  for (const std::string& name : task->Dbs()) {
    auto st = std::make_unique<DbState>();
    st->dir = name.empty() ? options.output : (fs::path(options.output) / name).string();
    st->writer = std::make_unique<featdb::TxtDbWriter>(st->dir, wo);
    summary->dbs.push_back(st->dir);
    dbs_[name] = std::move(st);
  }
}

TxtDbWriterStage::~TxtDbWriterStage() = default;

void TxtDbWriterStage::AddReject(const Reject& r, const std::string& strict_message) {
  if (options_.strict) {
    if (!strict_message.empty()) throw FormatError(strict_message + " (--strict)", r.file);
    std::string where = r.line > 0 ? Where(r.file, r.line) : r.file;
    if (!r.key.empty()) where += "[" + r.key + "]";
    throw FormatError(r.reason + " (--strict)", where);
  }
  rejects_->Add(r);
}

void TxtDbWriterStage::Write(ConvertBatch& b) {
  for (size_t i = 0; i < b.units.size(); ++i) {
    if (b.rejects[i]) {
      AddReject(*b.rejects[i], "");
      continue;
    }
    for (Example& ex : b.examples[i]) WriteExample(b.units[i], ex);
    progress_->Add(1);
  }
}

void TxtDbWriterStage::WriteExample(const Unit& unit, Example& ex) {
  auto it = dbs_.find(ex.db);
  if (it == dbs_.end()) throw Error("internal: task wrote to undeclared db '" + ex.db + "'");
  DbState& st = *it->second;
  if (!missing_.empty()) {
    bool drop = false;
    for (const auto& f : ex.img_fnames) drop = drop || missing_.count(f);
    if (drop) {
      ++summary_->missing_images;
      return;
    }
  }
  const std::string& file = ctx_->Annotation(unit.file);
  if (ex.key.empty() || ex.key.size() > 511) {  // LMDB's key size limit
    AddReject({file, unit.line, ex.key.substr(0, 64), "key is empty or longer than 511 bytes"},
              "key is empty or longer than 511 bytes");
    return;
  }
  auto key_at = [&](uint32_t k) -> const std::string& { return st.key_store[k]; };
  KeySet::Slot& slot = st.keys.Find(ex.key, ex.key_hash, key_at);
  if (slot.index != 0) {
    AddReject({file, unit.line, ex.key, "duplicate key"}, "duplicate key '" + ex.key + "'");
    return;
  }
  const auto key_index = static_cast<uint32_t>(st.key_store.size());
  st.keys.Fill(slot, ex.key_hash, key_index);
  for (const auto& [name, len] : ex.lens) st.Lens(name).AddJson(ex.json_key, len);
  if (task_->WritesTxt2Img() && !ex.img_fnames.empty()) {
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
  if (options_.resume && st.writer->Contains(ex.key)) {
    ++summary_->resumed;
  } else {
    st.writer->PutRaw(ex.key, std::move(ex.encoded));
    ++summary_->written;
    // The clock is read every 256 records: reading it per record showed in profiles.
    if (++st.uncommitted >= kMaxUncommitted ||
        ((st.uncommitted & 255) == 0 && std::chrono::steady_clock::now() - st.last_commit >= kCommitInterval)) {
      st.writer->Commit();
      st.uncommitted = 0;
      st.last_commit = std::chrono::steady_clock::now();
    }
  }
  st.key_store.push_back(std::move(ex.key));
  st.json_keys.push_back(std::move(ex.json_key));
  ++summary_->examples;
}

void TxtDbWriterStage::Finish() {
  for (auto& [name, stp] : dbs_) {
    DbState& st = *stp;
    st.writer->Commit();
    if (st.lens.empty()) st.Lens("id2len");
    for (auto& [lens_name, w] : st.lens) WriteFileAtomic(st.dir + "/" + lens_name + ".json", w.Finish());
    if (task_->WritesTxt2Img()) WriteFileAtomic(st.dir + "/txt2img.json", st.txt2img.Finish());
    if (task_->WritesImg2Txts()) {
      JsonObjectWriter w;
      std::string img_name, ids;
      for (const auto& img : st.imgs) {
        img_name.clear();
        AppendPyJsonString(&img_name, img.name);
        ids.clear();
        ids.push_back('[');
        for (size_t k = 0; k < img.keys.size(); ++k) {
          if (k) ids.append(", ");
          ids.append(st.json_keys[img.keys[k]]);
        }
        ids.push_back(']');
        w.AddJson(img_name, ids);
      }
      WriteFileAtomic(st.dir + "/img2txts.json", w.Finish());
    }
    task_->Finish(name, *st.writer, *rejects_);
    st.writer->WriteJson("meta.json", BuildMeta(options_, toker_, *task_, name));
    st.writer->Close();
  }
}

flow::receiver<ConvertBatchPtr>& ConvertNodes::entry() { return *limiter_; }
flow::sender<flow::continue_msg>& ConvertNodes::exit() { return *release_; }

std::unique_ptr<ConvertNodes> AddConvertStages(flow::graph& g, const ConvertStagesConfig& c) {
  auto n = std::make_unique<ConvertNodes>();
  n->limiter_ = std::make_unique<flow::limiter_node<ConvertBatchPtr>>(g, c.tokens);
  n->work_ = std::make_unique<flow::function_node<ConvertBatchPtr, ConvertBatchPtr>>(g, flow::unlimited,
                                                                                     ConvertWork(c.task, c.ctx));
  n->in_order_ = std::make_unique<flow::sequencer_node<ConvertBatchPtr>>(
      g, [](const ConvertBatchPtr& b) { return static_cast<size_t>(b->seq); });
  TxtDbWriterStage* writer = c.writer;
  n->writer_ = std::make_unique<flow::function_node<ConvertBatchPtr, ConvertBatchPtr>>(
      g, flow::serial, [writer](ConvertBatchPtr b) {
        writer->Write(*b);
        return b;
      });
  // Freeing a batch's strings is work the serial writer need not do.
  n->release_ = std::make_unique<flow::function_node<ConvertBatchPtr, flow::continue_msg>>(
      g, flow::unlimited, [](ConvertBatchPtr b) {
        b.reset();
        return flow::continue_msg();
      });
  flow::make_edge(*n->limiter_, *n->work_);
  flow::make_edge(*n->work_, *n->in_order_);
  flow::make_edge(*n->in_order_, *n->writer_);
  flow::make_edge(*n->writer_, *n->release_);
  flow::make_edge(*n->release_, n->limiter_->decrementer());
  return n;
}

}  // namespace uniter::converters

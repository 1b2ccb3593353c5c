#include "pipeline/run.h"

#include <tbb/flow_graph.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "converters/convert.h"
#include "extractor/extract_run.h"
#include "featdb/db_tools.h"
#include "featdb/img_db.h"
#include "featdb/pack.h"
#include "pipeline/board.h"
#include "pipeline/manifest.h"
#include "pipeline/ranks.h"
#include "pipeline/report.h"
#include "pipeline/tasks.h"
#include "trainer/train.h"

namespace uniter::pipeline {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

int StageIndex(const std::string& name) {
  const std::string n = (name == "extract" || name == "pack") ? "features" : name;
  for (int i = 0; i < static_cast<int>(std::size(kStageNames)); ++i)
    if (n == kStageNames[i]) return i;
  throw UsageError("unknown stage '" + name + "'; stages: convert, extract|pack, train, infer, eval, report");
}

json WithSummary(json r) {
  r["summary"] = std::to_string(r["items"].get<uint64_t>()) + " images, " + std::to_string(r["rejects"].get<uint64_t>()) +
                 " rejects";
  return r;
}

// The extractor's shard outputs of a split folder (<dir>.shardKofN/).
void RemoveShards(const std::string& dir) {
  const fs::path p(dir);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(p.parent_path(), ec))
    if (e.path().filename().string().starts_with(p.filename().string() + ".shard")) fs::remove_all(e.path());
}

std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The identity of a finished stage's work, for its consumers' manifests.
json Identity(const Manifest& m) { return {{"stage", m.stage}, {"options", m.options}, {"inputs", m.inputs}}; }

// The newest ckpt/model_step_N.pt of a training output_dir.
std::string NewestCheckpoint(const std::string& output_dir) {
  std::string best;
  long best_step = -1;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(output_dir + "/ckpt", ec)) {
    const std::string name = e.path().filename().string();
    if (!name.starts_with("model_step_") || !name.ends_with(".pt")) continue;
    const long step = std::stol(name.substr(11, name.size() - 14));
    if (step > best_step) best_step = step, best = e.path().string();
  }
  if (best.empty()) throw IoError("the training run saved no checkpoint", output_dir + "/ckpt");
  return best;
}

class Runner {
 public:
  Runner(const PipelineConfig& c, const RunPipelineOptions& o) : c_(c), task_(TaskFor(c.task)), o_(o) {
    from_ = StageIndex(o.from);
    until_ = StageIndex(o.until);
    if (from_ > until_) throw UsageError("--from " + o.from + " comes after --until " + o.until);
    root_ = fs::absolute(c.output).lexically_normal().string();
    for (const auto& [split, ann] : c.annotations) splits_.push_back(split);
    ParseTrain();
    ranks_ = Ranks::Connect(trainer::ReadDistEnv(), std::chrono::seconds(trainer::RunOptions().dist_timeout_s));
  }

  PipelineResult Run();

 private:
  void ParseTrain();
  std::string TxtDb(const std::string& split) const { return root_ + "/txt_db/" + c_.task + "_" + split + ".db"; }
  std::string ImgDbSplit(const std::string& split) const { return root_ + "/img_db/" + c_.task + "_" + split; }
  std::string NbbJson(const std::string& split) const;
  std::string FeatureStage(const std::string& split) const { return (c_.extracts() ? "extract-" : "pack-") + split; }
  // VQA's answer vocabulary: given, or the one convert-train builds.
  std::string Ans2Label() const { return c_.ans2label.empty() ? TxtDb("train") + "/ans2label.json" : c_.ans2label; }
  // Whether convert-<split> needs convert-train's ans2label.json first.
  bool NeedsTrainAnswers(const std::string& split) const {
    return c_.task == "vqa" && c_.ans2label.empty() && split != "train";
  }

  // Runs `body` unless the stage's manifest matches; then writes the manifest.
  // `redo` clears a stale output first (not for a stage that resumes).
  void RunStage(const std::string& name, int index, const std::string& manifest_path, Manifest m,
                const std::function<void()>& redo, const std::function<json()>& body);
  Manifest Finished(const std::string& manifest_path, const std::string& stage) const;

  void Convert(const std::string& split);
  void Features(const std::string& split);
  extractor::ExtractOptions ExtractOptionsFor(const std::string& split, int rank) const;
  nlohmann::json MergeShards(const std::string& split, const std::string& stage, const extractor::ExtractResult& mine);
  PipelineResult RunOtherRank();
  std::vector<std::string> PlanStages() const;
  void Train();
  void Infer();
  void Eval();
  void Report();

  const PipelineConfig& c_;
  const TaskSpec& task_;
  RunPipelineOptions o_;
  int from_ = 0, until_ = 0;
  std::string root_;
  std::vector<std::string> splits_;
  trainer::TrainOptions train_;
  std::string model_config_;
  std::unique_ptr<Board> board_;  // rank 0 only
  std::unique_ptr<Ranks> ranks_;  // several processes (torchrun, srun) only
  std::mutex mu_;
  PipelineResult result_;
};

void Runner::ParseTrain() {
  std::vector<trainer::OptionOverride> ov = {
      {"train_txt_db", {TxtDb("train")}}, {"train_img_db", {ImgDbSplit("train")}},
      // UNITER's ITM configs spell them train_txt_dbs/train_img_dbs, which win over the singular.
      {"train_txt_dbs", {TxtDb("train")}}, {"train_img_dbs", {ImgDbSplit("train")}},
      {"val_txt_db", {TxtDb("dev")}},     {"val_img_db", {ImgDbSplit("dev")}},
      {"output_dir", {root_ + "/train/run"}}};
  // train_itm.py evaluates on a test split at the end: without one, dev's.
  const std::string test = c_.annotations.count("test") ? "test" : task_.kind == trainer::TaskKind::kItm ? "dev" : "";
  if (!test.empty()) {
    ov.push_back({"test_txt_db", {TxtDb(test)}});
    ov.push_back({"test_img_db", {ImgDbSplit(test)}});
  }
  if (!c_.model_config.empty()) ov.push_back({"model_config", {c_.model_config}});
  for (const auto& [k, v] : c_.train_overrides) ov.push_back({k, {v}});
  if (c_.task == "vqa") ov.push_back({"ans2label", {Ans2Label()}});
  train_ = trainer::ParseTrainOptions(task_.kind, c_.train_config_json, c_.train_config_where, ov);
  model_config_ = train_.model_config;
  if (!fs::exists(model_config_)) throw IoError("no such model config", model_config_);
}

std::string Runner::NbbJson(const std::string& split) const {
  featdb::ImgDbOptions db;
  db.conf_th = train_.conf_th;
  db.max_bb = train_.max_bb;
  db.min_bb = train_.min_bb;
  return ImgDbSplit(split) + "/" + featdb::NbbJsonName(db);
}

Manifest Runner::Finished(const std::string& manifest_path, const std::string& stage) const {
  Manifest m;
  if (!ReadManifest(manifest_path, &m))
    throw UsageError("--from " + o_.from + ": stage " + stage + " has no complete output (run it first)",
                     manifest_path);
  return m;
}

void Runner::RunStage(const std::string& name, int index, const std::string& manifest_path, Manifest m,
                      const std::function<void()>& redo, const std::function<json()>& body) {
  if (index > until_) return;
  Manifest old;
  if (index < from_) {
    Finished(manifest_path, name);
    board_->Done(name, "", true);
    return;
  }
  if (index == from_ && from_ > 0) {
    // --from STAGE: that stage is redone whatever its manifest says.
  } else if (ReadManifest(manifest_path, &old) && old.SameWork(m)) {
    board_->Done(name, "", true);
    std::lock_guard lock(mu_);
    ++result_.stages_skipped;
    return;
  }
  board_->Start(name);
  const auto start = std::chrono::steady_clock::now();
  try {
    if (redo) redo();
    m.result = body();
  } catch (const Error& e) {
    board_->Fail(name);
    throw Error("stage " + name + ": " + e.message(), e.where());
  }
  m.result["seconds"] = Since(start);
  WriteManifest(manifest_path, m);
  board_->Done(name, m.result.value("summary", ""), false);
  std::lock_guard lock(mu_);
  ++result_.stages_run;
}

void Runner::Convert(const std::string& split) {
  const std::string db = TxtDb(split);
  Manifest m;
  m.stage = "convert-" + split;
  m.options = {{"task", c_.task}};
  if (c_.task == "vqa") m.AddInput(c_.questions.at(split));
  m.AddInput(c_.annotations.at(split));
  m.AddInput(c_.vocab);
  if (!c_.ans2label.empty()) m.AddInput(c_.ans2label);
  if (NeedsTrainAnswers(split))
    m.options["answers_from"] = Identity(Finished(TxtDb("train") + "/manifest.json", "convert-train"));
  RunStage(m.stage, 0, db + "/manifest.json", m, [&] { fs::remove_all(db), fs::remove_all(db + ".parts"); }, [&] {
    converters::ConvertOptions co;
    co.task = c_.task;
    co.annotations = {c_.annotations.at(split)};
    if (c_.task == "vqa") {
      co.annotations.insert(co.annotations.begin(), c_.questions.at(split));
      if (!c_.ans2label.empty() || split != "train") co.task_options["ans2label"] = {Ans2Label()};
    }
    co.vocab = c_.vocab;
    co.output = db;
    co.threads = c_.threads;
    co.quiet = true;
    const converters::ConvertSummary s = task_.convert(co, split);
    return json{{"items", s.examples}, {"rejects", s.rejects}, {"rejects_path", s.rejects ? s.rejects_path : ""},
                {"unit", "examples"}, {"summary", std::to_string(s.examples) + " examples, " +
                                                       std::to_string(s.rejects) + " rejects"}};
  });
}

void Runner::Features(const std::string& split) {
  const std::string dir = ImgDbSplit(split);
  Manifest m;
  m.stage = FeatureStage(split);
  m.options = {{"conf_th", train_.conf_th}, {"max_bb", train_.max_bb}, {"min_bb", train_.min_bb},
               {"num_bb", train_.num_bb}, {"compressed_db", train_.compressed_db}};
  if (c_.extracts()) {
    m.options.update({{"target_size", c_.extract_target_size}, {"max_size", c_.extract_max_size},
                      {"proposals", c_.extract_proposals}, {"batch", c_.extract_batch}});
    m.AddInput(c_.images.at(split));
    m.AddInput(c_.detector_weights);
    if (!c_.detector_prototxt.empty()) m.AddInput(c_.detector_prototxt);
  } else {
    m.AddInput(c_.npz.at(split));
  }
  auto redo = [&] {
    fs::remove_all(dir);
    RemoveShards(dir);
  };
  RunStage(m.stage, 1, dir + "/manifest.json", m, redo, [&] {
    json r;
    if (c_.extracts()) {
      // Several ranks: each extracts every N-th image; rank 0 merges.
      if (ranks_) ranks_->Plan(m.stage, "run");
      const extractor::ExtractResult x = extractor::RunExtract(ExtractOptionsFor(split, 0));
      if (ranks_) return MergeShards(split, m.stage, x);
      r = {{"items", x.written}, {"rejects", x.rejected}, {"rejects_path", x.rejected ? x.rejects_path : ""},
           {"unit", "images"}, {"db", x.output_path}};
    } else {
      featdb::PackOptions po;
      po.npz_dir = c_.npz.at(split);
      // Pack names the split folder after the npz folder; the pipeline's is <task>_<split>.
      po.img_db_dir = dir + ".pack";
      po.db.codec = train_.compressed_db ? featdb::Codec::kNpz : featdb::Codec::kMsgpack;
      po.db.conf_th = train_.conf_th;
      po.db.max_bb = train_.max_bb;
      po.db.min_bb = train_.min_bb;
      po.db.num_bb = train_.num_bb;
      po.threads = c_.threads;
      po.quiet = true;
      fs::remove_all(po.img_db_dir);
      const featdb::PackResult p = featdb::Pack(po);
      fs::rename(fs::path(p.db_path).parent_path(), dir);
      fs::remove_all(po.img_db_dir);
      r = {{"items", p.written}, {"rejects", p.rejected}, {"unit", "images"},
           {"rejects_path", p.rejected ? dir + "/" + fs::path(p.rejects_path).filename().string() : ""},
           {"db", dir + "/" + fs::path(p.db_path).filename().string()}};
    }
    return WithSummary(r);
  });
  if (ranks_ && c_.extracts()) ranks_->Plan(m.stage, "skip");  // not run: up to date, or after --until
}

extractor::ExtractOptions Runner::ExtractOptionsFor(const std::string& split, int rank) const {
  extractor::ExtractOptions eo;
  eo.images = c_.images.at(split);
  eo.prototxt = c_.detector_prototxt;
  eo.weights = c_.detector_weights;
  eo.out = ImgDbSplit(split);  // shard k of N: <out>.shardkofN/
  eo.codec = train_.compressed_db ? "npz" : "msgpack";
  eo.id_of = task_.feature_id;
  if (board_)
    eo.on_image = [this, name = FeatureStage(split)](uint64_t done, uint64_t total) {
      board_->Update(name, std::to_string(done) + "/" + std::to_string(total) + " images");
    };
  eo.shard = std::to_string(rank) + "/" + std::to_string(ranks_ ? ranks_->world_size() : 1);
  eo.batch = c_.extract_batch;
  eo.threads = c_.threads;
  eo.quiet = true;
  eo.config.target_size = c_.extract_target_size;
  eo.config.max_size = c_.extract_max_size;
  eo.config.post_nms_top_n = c_.extract_proposals;
  eo.config.conf_threshold = train_.conf_th;
  eo.config.max_boxes = train_.max_bb;
  eo.config.min_boxes = train_.min_bb;
  return eo;
}

// Rank 0: every rank's shard db (rank 0's `mine`) into the split folder, the
// shards' rejects into one file beside it; then the shards go.
json Runner::MergeShards(const std::string& split, const std::string& stage, const extractor::ExtractResult& mine) {
  json r = {{"items", mine.written}, {"rejects", mine.rejected}, {"unit", "images"}};
  featdb::MergeOptions mo;
  mo.shards = {mine.output_path};
  std::vector<std::string> rejects = {mine.rejects_path};
  for (int k = 1; k < ranks_->world_size(); ++k) {
    const json x = ranks_->AwaitShard(stage, k);
    r["items"] = r["items"].get<uint64_t>() + x["written"].get<uint64_t>();
    r["rejects"] = r["rejects"].get<uint64_t>() + x["rejected"].get<uint64_t>();
    mo.shards.push_back(x["db"].get<std::string>());
    rejects.push_back(x["rejects_path"].get<std::string>());
  }
  mo.out = ImgDbSplit(split);
  mo.quiet = true;
  const featdb::MergeResult merged = featdb::Merge(mo);
  std::string lines;
  for (const auto& f : rejects)
    if (fs::exists(f)) lines += ReadWholeFile(f);
  const std::string rejects_path = merged.out_db + ".rejects.jsonl";
  if (!lines.empty()) WriteFileAtomic(rejects_path, lines);
  RemoveShards(ImgDbSplit(split));
  r["rejects_path"] = lines.empty() ? "" : rejects_path;
  r["db"] = merged.out_db;
  r["ranks"] = ranks_->world_size();
  return WithSummary(r);
}

void Runner::Train() {
  if (until_ < 2) return;
  const std::string dir = root_ + "/train";
  Manifest m;
  m.stage = "train";
  json upstream = json::array();
  for (const auto& split : splits_) {
    upstream.push_back(Identity(Finished(TxtDb(split) + "/manifest.json", "convert-" + split)));
    upstream.push_back(Identity(Finished(ImgDbSplit(split) + "/manifest.json", FeatureStage(split))));
  }
  m.options = {{"hps", json::parse(train_.hps_json)}, {"upstream", upstream}};
  m.AddInput(model_config_);
  if (!train_.checkpoint.empty()) m.AddInput(train_.checkpoint);
  const std::string pending = dir + "/manifest.pending.json";
  // A killed run of the same work resumes (the trainer continues from its
  // last checkpoint); any other leftover is started over.
  auto redo = [&] {
    Manifest p;
    if (ReadManifest(pending, &p) && p.SameWork(m)) return;
    fs::remove_all(dir);
    fs::create_directories(dir);
    WriteManifest(pending, m);
  };
  RunStage("train", 2, dir + "/manifest.json", m, redo, [&] {
    trainer::RunOptions ro;
    ro.quiet = true;
    ro.threads = c_.threads;
    ro.on_step = [this](int64_t step, int64_t total) {
      board_->Update("train", "step " + std::to_string(step) + "/" + std::to_string(total));
    };
    if (task_.check_features)
      for (const auto& split : splits_)
        CheckImagesHaveFeatures(TxtDb(split), NbbJson(split), c_.annotations.at(split),
                                c_.extracts() ? c_.images.at(split) : c_.npz.at(split));
    if (ranks_) ranks_->Plan("train", "run");  // the other ranks join the trainer's group
    const trainer::TrainResult t = trainer::Train(task_.kind, train_, ro);
    fs::remove(pending);
    json metrics = json::object();  // ITM: the final val_/test_ R@K
    for (const auto& [k, v] : t.metrics) metrics[k] = v;
    return json{{"items", t.global_step}, {"unit", "steps"}, {"val_acc", t.val_acc}, {"val_loss", t.val_loss},
                {"checkpoint", NewestCheckpoint(train_.output_dir)}, {"metrics", metrics},
                {"summary", std::to_string(t.global_step) + " steps, val acc " + std::to_string(t.val_acc)}};
  });
  if (ranks_) ranks_->Plan("train", "skip");  // up to date
}

void Runner::Infer() {
  if (until_ < 3) return;
  const std::string dir = root_ + "/infer";
  Manifest m;
  m.stage = "infer";
  m.options = {{"upstream", {Identity(Finished(root_ + "/train/manifest.json", "train"))}}};
  RunStage("infer", 3, dir + "/manifest.json", m, [&] { fs::remove_all(dir); }, [&] {
    trainer::InferOptions io;
    io.txt_db = TxtDb("dev");
    io.img_db = ImgDbSplit("dev");
    io.checkpoint = NewestCheckpoint(train_.output_dir);
    io.model_config = model_config_;  // log/model.json leaves out img_dim
    io.output_dir = dir;
    trainer::ApplyTrainConfig(ReadWholeFile(train_.output_dir + "/log/hps.json"), train_.output_dir + "/log/hps.json", &io);
    if (c_.task == "vqa") io.ans2label = Ans2Label();
    if (task_.kind == trainer::TaskKind::kItm) {  // inf_itm.py's --batch_size: images per mini-batch
      io.batch_size = train_.inf_minibatch_size;
      io.fix_uniter_quirks = train_.fix_uniter_quirks;
    }
    trainer::RunOptions ro;
    ro.quiet = true;
    ro.threads = c_.threads;
    const trainer::InferResult r = trainer::Infer(task_.kind, io, ro);
    return json{{"items", r.examples}, {"unit", "examples"}, {"results", r.results},
                {"checkpoint", io.checkpoint}, {"summary", std::to_string(r.examples) + " predictions"}};
  });
}

void Runner::Eval() {
  if (until_ < 4) return;
  const std::string dir = root_ + "/eval";
  Manifest m;
  m.stage = "eval";
  const Manifest infer = Finished(root_ + "/infer/manifest.json", "infer");
  m.options = {{"upstream", {Identity(infer)}}};
  m.AddInput(c_.annotations.at("dev"));
  RunStage("eval", 4, dir + "/manifest.json", m, [&] { fs::remove_all(dir); }, [&] {
    const json metrics = task_.metrics({infer.result["results"].get<std::string>(), c_.annotations.at("dev"), TxtDb("dev")});
    fs::create_directories(dir);
    WriteFileAtomic(dir + "/metrics.json", metrics.dump(1) + "\n");
    std::string summary;
    for (const auto& [k, v] : metrics.items())
      if (v.is_number_float()) summary += (summary.empty() ? "" : ", ") + k + " " + std::to_string(v.get<double>());
    return json{{"items", metrics.value("examples", metrics.value("questions", int64_t{0}))}, {"unit", "examples"},
                {"metrics", metrics}, {"summary", summary}};
  });
  Manifest done;
  if (until_ >= 4 && ReadManifest(dir + "/manifest.json", &done))
    for (const auto& [k, v] : done.result["metrics"].items())
      if (v.is_number_float()) result_.metrics.emplace_back(k, v.get<double>());
}

void Runner::Report() {
  if (until_ < 5) return;
  board_->Start("report");
  ReportInputs in;
  in.root = root_;
  in.task = c_.task;
  in.splits = splits_;
  in.train_log_dir = train_.output_dir + "/log";
  for (const auto& s : splits_) {
    in.stage_manifests.push_back(TxtDb(s) + "/manifest.json");
    in.stage_manifests.push_back(ImgDbSplit(s) + "/manifest.json");
    in.txt_dbs.push_back(TxtDb(s));
    in.nbb_jsons.push_back(NbbJson(s));
  }
  for (const char* s : {"train", "infer", "eval"}) in.stage_manifests.push_back(root_ + "/" + s + "/manifest.json");
  result_.report = root_ + "/report.html";
  WriteReport(in, result_.report);
  board_->Done("report", result_.report, false);
}

std::vector<std::string> Runner::PlanStages() const {
  std::vector<std::string> out;
  if (c_.extracts())
    for (const auto& s : splits_) out.push_back(FeatureStage(s));
  out.push_back("train");
  return out;
}

// A rank other than 0: its shard of each extract stage rank 0 runs, then its
// part of training; nothing else (rank 0 converts, merges, infers, evaluates).
PipelineResult Runner::RunOtherRank() {
  const int rank = ranks_->rank();
  try {
    const std::vector<std::string> stages = PlanStages();
    for (size_t i = 0; i + 1 < stages.size(); ++i) {
      if (ranks_->AwaitPlan(stages[i]) != "run") continue;
      try {
        const extractor::ExtractResult x = extractor::RunExtract(ExtractOptionsFor(splits_[i], rank));
        ranks_->ShardDone(stages[i], {{"written", x.written}, {"rejected", x.rejected}, {"db", x.output_path},
                                      {"rejects_path", x.rejects_path}});
      } catch (const std::exception& e) {
        ranks_->ShardFailed({stages.begin() + static_cast<std::ptrdiff_t>(i), stages.end() - 1}, FirstLine(e.what()));
        throw;
      }
    }
    if (until_ >= 2 && ranks_->AwaitPlan("train") == "run") {
      trainer::RunOptions ro;
      ro.quiet = true;
      ro.threads = c_.threads;
      trainer::Train(task_.kind, train_, ro);
    }
  } catch (...) {
    ranks_->Exit();
    throw;
  }
  ranks_->Exit();
  PipelineResult r;
  r.rank = rank;
  return r;
}

PipelineResult Runner::Run() {
  if (ranks_ && ranks_->rank() != 0) return RunOtherRank();
  std::vector<std::string> names;
  for (const auto& s : splits_) names.push_back("convert-" + s);
  for (const auto& s : splits_) names.push_back(FeatureStage(s));
  for (const char* s : {"train", "infer", "eval", "report"}) names.push_back(s);
  board_ = std::make_unique<Board>(names, o_.quiet);
  fs::create_directories(root_);
  // One graph: every convert and feature stage starts at once; train waits
  // for all of them (a continue_node fires once every predecessor did).
  tbb::flow::graph g;
  using Node = tbb::flow::continue_node<tbb::flow::continue_msg>;
  tbb::flow::broadcast_node<tbb::flow::continue_msg> start(g);
  std::vector<std::unique_ptr<Node>> inputs;
  auto train = std::make_unique<Node>(g, [this](tbb::flow::continue_msg) { Train(); });
  Node* convert_train = nullptr;
  for (const auto& split : splits_) {
    inputs.push_back(std::make_unique<Node>(g, [this, split](tbb::flow::continue_msg) { Convert(split); }));
    if (split == "train") convert_train = inputs.back().get();
    inputs.push_back(std::make_unique<Node>(g, [this, split](tbb::flow::continue_msg) { Features(split); }));
  }
  for (auto& n : inputs) {
    tbb::flow::make_edge(start, *n);
    tbb::flow::make_edge(*n, *train);
  }
  // VQA's dev answers are the train split's (a continue_node waits for all its predecessors).
  for (size_t i = 0; i < splits_.size(); ++i)
    if (NeedsTrainAnswers(splits_[i])) tbb::flow::make_edge(*convert_train, *inputs[2 * i]);
  Node infer(g, [this](tbb::flow::continue_msg) { Infer(); });
  Node eval(g, [this](tbb::flow::continue_msg) { Eval(); });
  Node report(g, [this](tbb::flow::continue_msg) { Report(); });
  tbb::flow::make_edge(*train, infer);
  tbb::flow::make_edge(infer, eval);
  tbb::flow::make_edge(eval, report);
  start.try_put(tbb::flow::continue_msg());
  try {
    g.wait_for_all();
  } catch (const std::exception& e) {
    board_->Stop();
    if (ranks_) {  // every rank still waiting for a plan ends with this line
      ranks_->PlanRest(PlanStages(), "error: " + FirstLine(e.what()));
      ranks_->AwaitExits(std::chrono::seconds(60));
    }
    throw;
  }
  board_->Stop();
  if (ranks_) {
    ranks_->PlanRest(PlanStages(), "skip");
    ranks_->AwaitExits(std::chrono::seconds(60));
  }
  return result_;
}

}  // namespace

PipelineResult RunPipeline(const PipelineConfig& config, const RunPipelineOptions& options) {
  const trainer::DistEnv env = trainer::ReadDistEnv();
  try {
    Runner runner(config, options);
    return runner.Run();
  } catch (...) {
    if (env.world_size <= 1) throw;
    trainer::RethrowNamingRank(env);
  }
}

}  // namespace uniter::pipeline

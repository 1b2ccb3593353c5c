// Pretraining step benchmark: one UNITER-base pretraining step per task (MLM,
// MRFR, MRC, MRC-kl, ITM with word-region alignment by optimal transport):
// forward with compute_loss, pretrain.py's reduction (ITM: + itm_ot_lambda ·
// the OT term), backward, clip_grad_norm_, UNITER's AdamW, zero_grad —
// PretrainModel + the finetuning loop's ApplyUpdate — against the PyTorch
// restatement of model/pretrain.py and model/ot.py (tests/trainer/pretrain_ref.py,
// run by bench/pretrain_step_peer.py) with the same torch threads, weights (one
// checkpoint we write, loaded by the peer with strict=True) and batch, in the
// same run, each side in its own process (peak RSS = VmHWM of that process).
//
//   pretrain_step_bench [--task mlm,mrfr,mrc,mrc-kl,itm] [--tokens 1024] [--threads 1,2]
//                       [--steps 5] [--warmup 2] [--device cpu|cuda] [--amp none|fp16|bf16]
//                       [--sides ours,peer] [--dir DIR] [--python PY]
// Batches: UNITER's TokenBucketSampler fills `--tokens` (pretrain-indomain-
// base-8gpu.json: 10,240 per GPU; the default 1,024 keeps a CPU step near the
// finetuning bench's) with rows of 15–20 caption tokens + [CLS]/[SEP] and 36
// boxes: rows = tokens / the longest row. Masks as UNITER's collates leave
// them: 15 % of caption tokens (≥ 1) for MLM, 15 % of regions (≥ 1) zeroed for
// MRFR / MRC, ITM targets half negatives, OT inputs as itm_ot_collate.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "common/torch_runtime.h"
#include "trainer/internal/amp.h"
#include "trainer/internal/checkpoint.h"
#include "trainer/internal/pretrain_model.h"
#include "trainer/internal/train_step.h"
#include "trainer/optim/internal/adamw.h"

namespace fs = std::filesystem;
using namespace uniter::trainer;
using uniter::bench::Median;
using uniter::bench::SplitCommas;

namespace {

constexpr int64_t kImgDim = 2048, kImgLabelDim = 1601, kBoxes = 36;
// pretrain-indomain-base-8gpu.json's optimizer and OT weight.
constexpr double kLr = 5e-5, kWeightDecay = 0.01, kGradNorm = 5.0, kOtLambda = 0.1;

struct Flags {
  std::vector<std::string> tasks = {"mlm", "mrfr", "mrc", "mrc-kl", "itm"};
  std::vector<std::string> threads = {"1", "2"};
  std::vector<std::string> sides = {"ours", "peer"};
  int steps = 5, warmup = 2;
  int intra_op = 0;  // > 0: LibTorch's own pool on both sides (ConfigureTorchThreads), BLAS keeps --threads
  int64_t tokens = 1024;
  std::string device = "cpu", amp = "none";
  std::string dir = (fs::temp_directory_path() / "uniter_pretrain_step_bench").string();
  std::string python = std::string(std::getenv("HOME") ? std::getenv("HOME") : "") + "/.cache/uniter/venv/bin/python";
  std::string side, case_dir;  // child mode: --side ours --case DIR --threads N
};

// Row i's text slots first, then its boxes moved up behind them (get_gather_index).
at::Tensor GatherIndex(const std::vector<int64_t>& tl, int64_t max_tl, int64_t out_len) {
  const auto b = static_cast<int64_t>(tl.size());
  at::Tensor gi = at::arange(out_len, at::kLong).unsqueeze(0).repeat({b, 1});
  for (int64_t i = 0; i < b; ++i)
    gi[i].slice(0, tl[i], tl[i] + kBoxes).copy_(at::arange(max_tl, max_tl + kBoxes, at::kLong));
  return gi;
}

// One collated batch of `task` as UNITER's collate yields it, random content, fixed seed.
StateDict MakeBatch(const std::string& task, int64_t tokens, const UniterConfig& c) {
  std::mt19937 rng(17);
  at::manual_seed(17);
  std::vector<int64_t> tl;
  int64_t max_len = 0;
  for (;;) {  // TokenBucketSampler: rows while rows · longest row ≤ tokens
    const int64_t len = std::uniform_int_distribution<int64_t>(15, 20)(rng) + 2;
    const int64_t longest = std::max(max_len, len + kBoxes);
    if (static_cast<int64_t>(tl.size() + 1) * longest > tokens && !tl.empty()) break;
    tl.push_back(len);
    max_len = longest;
  }
  const auto rows = static_cast<int64_t>(tl.size());
  const int64_t max_tl = *std::max_element(tl.begin(), tl.end()), out_len = max_tl + kBoxes;
  at::Tensor ids = at::zeros({rows, max_tl}, at::kLong), attn = at::zeros({rows, out_len}, at::kLong);
  at::Tensor txt_pad = at::ones({rows, max_tl}, at::kBool), mask_tgt = at::zeros({rows, out_len}, at::kBool);
  at::Tensor labels = at::full({rows, max_tl}, -1, at::kLong);
  const at::Tensor feat = at::relu(at::randn({rows, kBoxes, kImgDim}) * 1.8 - 0.4);
  const at::Tensor pos = at::rand({rows, kBoxes, 7});
  at::Tensor img_masks = at::rand({rows, kBoxes}) < 0.15;
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t n = tl[i];
    ids[i].slice(0, 1, n - 1).copy_(at::randint(999, c.vocab_size, {n - 2}, at::kLong));
    ids[i][0] = 101;
    ids[i][n - 1] = 102;
    attn[i].slice(0, 0, n + kBoxes).fill_(1);
    txt_pad[i].slice(0, 0, n).fill_(false);
    at::Tensor pick = at::rand({n - 2}) < 0.15;
    pick[0] = pick.any().logical_not().logical_or(pick[0]);  // at least one target
    labels[i].slice(0, 1, n - 1).masked_scatter_(pick, ids[i].slice(0, 1, n - 1).masked_select(pick));
    img_masks[i][0] = img_masks[i].any().logical_not().logical_or(img_masks[i][0]);
    mask_tgt[i].slice(0, n, n + kBoxes).copy_(img_masks[i]);
  }
  StateDict b = {{"input_ids", ids},
                 {"position_ids", at::arange(max_tl, at::kLong).unsqueeze(0)},
                 {"img_pos_feat", pos},
                 {"attn_masks", attn},
                 {"gather_index", GatherIndex(tl, max_tl, out_len)}};
  const at::Tensor ext = img_masks.unsqueeze(-1).expand_as(feat);
  if (task == "mlm") {
    b[0].second = ids.masked_fill(labels.ne(-1), 103);  // [MASK] on every target (the 80 % case)
    b.emplace_back("txt_labels", labels);
    b.emplace_back("img_feat", feat);
  } else if (task == "itm") {
    at::Tensor scatter = at::arange(out_len, at::kLong).unsqueeze(0).repeat({rows, 1});
    for (int64_t i = 0; i < rows; ++i)
      scatter[i].slice(0, tl[i]).copy_(at::arange(max_tl, max_tl + out_len - tl[i], at::kLong));
    b.emplace_back("img_feat", feat);
    b.emplace_back("targets", (at::rand({rows}) >= 0.5).to(at::kLong));
    b.emplace_back("ot_scatter", scatter);
    b.emplace_back("txt_pad", txt_pad);
    b.emplace_back("img_pad", at::zeros({rows, kBoxes}, at::kBool));
  } else {
    if (task == "mrfr") {
      b.emplace_back("feat_targets", feat.masked_select(ext).view({-1, kImgDim}));
    } else {
      const at::Tensor soft = at::softmax(at::randn({rows, kBoxes, kImgLabelDim}) * 3, -1);
      b.emplace_back("label_targets", soft.masked_select(img_masks.unsqueeze(-1).expand_as(soft)).view({-1, kImgLabelDim}));
    }
    b.emplace_back("img_feat", feat.masked_fill(ext, 0));
    b.emplace_back("img_masks", img_masks);
    b.emplace_back("img_mask_tgt", mask_tgt);
  }
  return b;
}

// Writes DIR/<task>-<tokens>/{model.json, model.pt, batch.pt} once.
std::string PrepareCase(const Flags& f, const std::string& task) {
  const std::string dir = f.dir + "/" + task + "-" + std::to_string(f.tokens);
  if (fs::exists(dir + "/batch.pt")) return dir;
  fs::create_directories(dir);
  UniterConfig c;  // uniter-base.json
  std::ofstream(dir + "/model.json") << c.ToJson();
  at::manual_seed(42);
  PretrainModel model(c, kImgDim, kImgLabelDim);
  StateDict state;
  for (const auto& p : model->named_parameters()) state.emplace_back(p.key(), p.value().detach());
  WriteStateDict(state, dir + "/model.pt");
  WriteStateDict(MakeBatch(task, f.tokens, c), dir + "/batch.pt");
  return dir;
}

PretrainBatch LoadBatch(const std::string& path, const at::Device& device) {
  PretrainBatch p;
  Batch& b = p.batch;
  const std::map<std::string, at::Tensor*> slots = {
      {"input_ids", &b.input_ids},       {"position_ids", &b.position_ids}, {"img_feat", &b.img_feat},
      {"img_pos_feat", &b.img_pos_feat}, {"attn_masks", &b.attn_masks},     {"gather_index", &b.gather_index},
      {"img_masks", &b.img_masks},       {"targets", &b.targets},           {"txt_labels", &p.txt_labels},
      {"img_mask_tgt", &p.img_mask_tgt}, {"feat_targets", &p.feat_targets}, {"label_targets", &p.label_targets},
      {"ot_scatter", &p.ot_scatter},     {"txt_pad", &p.txt_pad},           {"img_pad", &p.img_pad}};
  for (auto& [key, t] : ReadStateDict(path)) *slots.at(key) = t.to(device);
  if (p.ot_scatter.defined()) p.scatter_max = p.ot_scatter.max().item<int64_t>();
  b.num_examples = b.input_ids.size(0);
  return p;
}

// UNITER's build_optimizer over the model's parameters, each tensor once (as
// torch's named_parameters lists the tied decoder / feat_regress weights).
std::unique_ptr<optim::AdamW> MakeOptimizer(PretrainModelImpl& m) {
  std::vector<std::pair<std::string, at::Tensor>> named;
  std::set<const void*> seen;
  for (const auto& p : m.named_parameters())
    if (seen.insert(p.value().unsafeGetTensorImpl()).second) named.emplace_back(p.key(), p.value());
  optim::ParamGroupOptions groups;
  groups.weight_decay = kWeightDecay;
  optim::AdamWOptions ao;
  ao.lr = kLr;
  ao.beta1 = 0.9;
  ao.beta2 = 0.98;
  return std::make_unique<optim::AdamW>(optim::AdamW::FromNamedParameters(named, groups, ao));
}

// Child: our step, timed; one JSON line on stdout.
int RunOurs(const Flags& f, const std::string& task_name) {
  nlohmann::json out;
  uniter::ConfigureTorchThreads(std::stoi(f.threads.at(0)), f.intra_op);
  uniter::KeepFreedMemoryForReuse();  // as uniter train/pretrain do
  const at::Device device(f.device);
  const PretrainTask task = ParsePretrainTask(task_name);
  const UniterConfig c = UniterConfig::FromJsonFile(f.case_dir + "/model.json");
  PretrainModel model(c, kImgDim, kImgLabelDim);
  {
    at::NoGradGuard no_grad;
    auto params = model->named_parameters();
    for (auto& [key, t] : ReadStateDict(f.case_dir + "/model.pt")) params[key].copy_(t);
  }
  model->to(device);
  const PretrainBatch batch = LoadBatch(f.case_dir + "/batch.pt", device);
  {
    at::NoGradGuard no_grad;
    model->eval();
    out["eval_loss"] = PretrainModelImpl::TrainLoss(task, model->Loss(task, batch), kOtLambda).item<double>();
    model->train();
  }
  auto optimizer = MakeOptimizer(*model);
  const std::vector<at::Tensor> params = optimizer->AllParams();
  const AmpMode amp = f.amp == "fp16" ? AmpMode::kFp16 : f.amp == "bf16" ? AmpMode::kBf16 : AmpMode::kFp32;
  LossScaler scaler(amp == AmpMode::kFp16);
  std::vector<double> ms, cpu_ms;
  for (int i = 0; i < f.warmup + f.steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = uniter::bench::CpuSeconds();
    at::Tensor loss;
    {
      AutocastGuard autocast(amp, device);
      loss = PretrainModelImpl::TrainLoss(task, model->Loss(task, batch), kOtLambda);
    }
    scaler.Scale(loss).backward();
    ApplyUpdate(*optimizer, params, kLr, kGradNorm, &scaler);
    out["loss"] = loss.item<double>();
    const double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i >= f.warmup) {
      ms.push_back(t);
      cpu_ms.push_back((uniter::bench::CpuSeconds() - c0) * 1000.0);
    }
  }
  out["ms"] = ms;
  out["median_ms"] = Median(ms);
  out["cpu_ms"] = Median(cpu_ms);
  out["vmhwm_mib"] = uniter::bench::VmHwmMiB();
  out["rows"] = batch.batch.input_ids.size(0);
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

nlohmann::json RunSide(const Flags& f, const std::string& side, const std::string& task, const std::string& dir,
                       const std::string& threads) {
  const std::string common = " --task " + task + " --case " + dir + " --threads " + threads + " --intra_op " + std::to_string(f.intra_op) + " --steps " +
                             std::to_string(f.steps) + " --warmup " + std::to_string(f.warmup) + " --device " +
                             f.device + " --amp " + f.amp;
  const std::string cmd = side == "ours"
                              ? fs::read_symlink("/proc/self/exe").string() + " --side ours" + common
                              : f.python + " " + UNITER_BENCH_SOURCE_DIR + "/pretrain_step_peer.py" + common;
  const std::string text = uniter::bench::Shell(uniter::bench::BlasThreadsEnv(threads) + cmd);
  const size_t brace = text.rfind('{');
  if (brace == std::string::npos) return {{"error", "no result from: " + cmd}};
  return nlohmann::json::parse(text.substr(brace));
}

std::string Ms(const nlohmann::json& j) {
  if (j.contains("error")) return "n/a (" + j["error"].get<std::string>() + ")";
  char buf[512];
  std::snprintf(buf, sizeof buf, "%8.1f ms/step wall, %8.1f ms/step CPU (wall per step %s), eval loss %.6f, peak RSS %.0f MiB",
                j["median_ms"].get<double>(), j["cpu_ms"].get<double>(), j["ms"].dump().c_str(),
                j["eval_loss"].get<double>(), j["vmhwm_mib"].get<double>());
  return buf;
}

void Compare(const std::string& task, const std::string& threads, std::map<std::string, nlohmann::json>& r) {
  for (const auto& [side, j] : r) std::printf("  %s, %s thread(s): %s\n", side.c_str(), threads.c_str(), Ms(j).c_str());
  if (!r.count("ours") || !r.count("peer") || r["ours"].contains("error") || r["peer"].contains("error")) return;
  std::printf("  ratio ours/peer %s, %s thread(s): wall %.3f, CPU %.3f, peak RSS %.3f (%lld rows)\n", task.c_str(),
              threads.c_str(), r["ours"]["median_ms"].get<double>() / r["peer"]["median_ms"].get<double>(),
              r["ours"]["cpu_ms"].get<double>() / r["peer"]["cpu_ms"].get<double>(),
              r["ours"]["vmhwm_mib"].get<double>() / r["peer"]["vmhwm_mib"].get<double>(),
              static_cast<long long>(r["ours"]["rows"].get<int64_t>()));
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--task") f.tasks = SplitCommas(v);
    else if (a == "--threads") f.threads = SplitCommas(v);
    else if (a == "--intra-op" || a == "--intra_op") f.intra_op = std::stoi(v);
    else if (a == "--sides") f.sides = SplitCommas(v);
    else if (a == "--steps") f.steps = std::stoi(v);
    else if (a == "--warmup") f.warmup = std::stoi(v);
    else if (a == "--tokens") f.tokens = std::stoll(v);
    else if (a == "--device") f.device = v;
    else if (a == "--amp") f.amp = v;
    else if (a == "--dir") f.dir = v;
    else if (a == "--python") f.python = v;
    else if (a == "--side") f.side = v;
    else if (a == "--case") f.case_dir = v;
    else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  if (f.amp != "none" && f.amp != "fp16" && f.amp != "bf16") {
    std::fprintf(stderr, "--amp must be none, fp16 or bf16\n");
    return 2;
  }
  if (f.side == "ours") return RunOurs(f, f.tasks.at(0));

  std::printf("pretrain step: UNITER-base (12 layers, H 768, vocab 28996), %lld-token batches (15-20 caption "
              "tokens + 36 boxes a row), device %s, amp %s, median of %d steps after %d warmup\n",
              static_cast<long long>(f.tokens), f.device.c_str(), f.amp.c_str(), f.steps, f.warmup);
  for (const std::string& task : f.tasks) {
    const std::string dir = PrepareCase(f, task);
    std::printf("%s\n", task.c_str());
    for (const std::string& t : f.threads) {
      std::map<std::string, nlohmann::json> r;
      for (const std::string& side : f.sides) r[side] = RunSide(f, side, task, dir, t);
      Compare(task, t, r);
      std::fflush(stdout);
    }
  }
  return 0;
}

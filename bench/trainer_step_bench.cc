// trainer step benchmark: one UNITER-base training step (forward, task loss,
// backward, clip_grad_norm_, UNITER's AdamW, zero_grad: the finetuning loop's
// own ForwardBackward + ApplyUpdate) against the PyTorch restatement of
// UNITER's model (tests/trainer/uniter_ref.py, via bench/trainer_step_peer.py)
// with the same torch threads, the same weights (one checkpoint we write, the
// peer loads with strict=True) and the same batch, in the same run. Each side
// runs in its own process so its peak RSS (VmHWM) is its own.
//
//   trainer_step_bench [--task nlvr2,vqa] [--threads 1,2] [--steps 5] [--warmup 2]
//                      [--device cpu|cuda] [--amp none|fp16|bf16] [--sides ours,peer]
//                      [--dir DIR] [--python PY]
// Batches: NLVR2 paired-attn 8 examples → 16 rows (14-26 text tokens, 36 boxes
// per image); VQA 16 questions (8-20 tokens, 36 boxes), 3,129 answers.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "common/torch_runtime.h"
#include "trainer/internal/checkpoint.h"
#include "trainer/internal/train_step.h"

namespace fs = std::filesystem;
using namespace uniter::trainer;

namespace {

struct Flags {
  std::vector<std::string> tasks = {"nlvr2", "vqa"};
  std::vector<std::string> threads = {"1", "2"};
  std::vector<std::string> sides = {"ours", "peer"};
  int steps = 5, warmup = 2;
  int intra_op = 0;  // > 0: LibTorch's own pool on both sides (ConfigureTorchThreads), BLAS keeps --threads
  std::string device = "cpu", amp = "none";
  std::string dir = (fs::temp_directory_path() / "uniter_step_bench").string();
  std::string python = std::string(std::getenv("HOME") ? std::getenv("HOME") : "") + "/.cache/uniter/venv/bin/python";
  std::string side, case_dir;  // child mode: --side ours --case DIR --threads N
  std::string profile;          // child: a Chrome trace of the timed steps (LibTorch's profiler)
};

using uniter::bench::Shell;
using uniter::bench::VmHwmMiB;
const auto& Split = uniter::bench::SplitCommas;

// UNITER's get_gather_index: text rows first, then the image rows moved up
// behind each row's own text.
at::Tensor GatherIndex(const std::vector<int64_t>& tl, const std::vector<int64_t>& nbb, int64_t max_tl,
                       int64_t out_len) {
  const auto b = static_cast<int64_t>(tl.size());
  at::Tensor gi = at::arange(out_len, at::kLong).unsqueeze(0).repeat({b, 1});
  for (int64_t i = 0; i < b; ++i)
    gi[i].slice(0, tl[i], tl[i] + nbb[i]).copy_(at::arange(max_tl, max_tl + nbb[i], at::kLong));
  return gi;
}

// A collated batch as UNITER's collate builds it, random content, fixed seed.
StateDict MakeBatch(const std::string& task, const UniterConfig& c) {
  std::mt19937 rng(task == "nlvr2" ? 7 : 11);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const bool nlvr2 = task == "nlvr2";
  const int64_t rows = 16, nbb_max = 36;
  std::vector<int64_t> tl(rows), nbb(rows, nbb_max);
  for (int64_t i = 0; i < rows; ++i) tl[i] = nlvr2 ? (i % 2 ? tl[i - 1] : uniform(14, 26)) : uniform(8, 20);
  const int64_t max_tl = *std::max_element(tl.begin(), tl.end());
  int64_t out_len = 0;
  for (int64_t i = 0; i < rows; ++i) out_len = std::max(out_len, tl[i] + nbb[i]);
  at::manual_seed(nlvr2 ? 7 : 11);
  at::Tensor ids = at::zeros({rows, max_tl}, at::kLong), masks = at::zeros({rows, out_len}, at::kLong);
  at::Tensor feat = at::zeros({rows, nbb_max, c.img_dim}), pos = at::zeros({rows, nbb_max, 7});
  at::Tensor types = at::zeros({rows, nbb_max}, at::kLong);
  for (int64_t i = 0; i < rows; ++i) {
    ids[i].slice(0, 0, tl[i]).copy_(at::randint(1, c.vocab_size, {tl[i]}, at::kLong));
    feat[i].slice(0, 0, nbb[i]).copy_(at::relu(at::randn({nbb[i], c.img_dim}) * 1.8 - 0.4));
    pos[i].slice(0, 0, nbb[i]).copy_(at::rand({nbb[i], 7}));
    masks[i].slice(0, 0, tl[i] + nbb[i]).fill_(1);
    types[i].slice(0, 0, nbb[i]).fill_(i % 2 + 1);
  }
  StateDict b = {{"input_ids", ids},
                 {"position_ids", at::arange(max_tl, at::kLong).unsqueeze(0)},
                 {"img_feat", feat},
                 {"img_pos_feat", pos},
                 {"attn_masks", masks},
                 {"gather_index", GatherIndex(tl, nbb, max_tl, out_len)}};
  if (nlvr2) {
    b.emplace_back("img_type_ids", types);
    b.emplace_back("targets", at::randint(0, 2, {rows / 2}, at::kLong));
  } else {
    at::Tensor t = at::rand({rows, 3129}) * (at::rand({rows, 3129}) < 0.002).to(at::kFloat);
    b.emplace_back("targets", t);
  }
  return b;
}

TaskOptions OptionsFor(const std::string& task) {
  TaskOptions o;
  o.task = task == "nlvr2" ? TaskKind::kNlvr2 : TaskKind::kVqa;
  o.nlvr2_model = "paired-attn";
  o.num_answers = 3129;
  return o;
}

// Writes DIR/<task>/{model.json, model.pt, batch.pt} once.
std::string PrepareCase(const Flags& f, const std::string& task) {
  const std::string dir = f.dir + "/" + task;
  if (fs::exists(dir + "/batch.pt")) return dir;
  fs::create_directories(dir);
  UniterConfig c;  // uniter-base.json
  std::ofstream(dir + "/model.json") << c.ToJson();
  Model model(c, OptionsFor(task), 42);
  model.Save(dir + "/model.pt");
  WriteStateDict(MakeBatch(task, c), dir + "/batch.pt");
  return dir;
}

Batch LoadBatch(const std::string& path, const at::Device& device) {
  Batch b;
  for (auto& [key, t] : ReadStateDict(path)) {
    at::Tensor v = t.to(device);
    if (key == "input_ids") b.input_ids = v;
    else if (key == "position_ids") b.position_ids = v;
    else if (key == "img_feat") b.img_feat = v;
    else if (key == "img_pos_feat") b.img_pos_feat = v;
    else if (key == "attn_masks") b.attn_masks = v;
    else if (key == "gather_index") b.gather_index = v;
    else if (key == "img_type_ids") b.img_type_ids = v;
    else if (key == "targets") b.targets = v;
  }
  b.num_examples = b.targets.size(0);
  b.qids.resize(b.num_examples);
  return b;
}

// Child: our step, timed; one JSON line on stdout.
int RunOurs(const Flags& f, const std::string& task) {
  nlohmann::json out;
  uniter::ConfigureTorchThreads(std::stoi(f.threads.at(0)), f.intra_op);
  uniter::KeepFreedMemoryForReuse();  // as uniter train/pretrain do
  const at::Device device(f.device);
  const UniterConfig c = UniterConfig::FromJsonFile(f.case_dir + "/model.json");
  Model model(c, OptionsFor(task), 1);
  model.Load(f.case_dir + "/model.pt");
  TaskModelImpl& m = model.module();
  m.to(device);
  const Batch batch = LoadBatch(f.case_dir + "/batch.pt", device);
  {
    at::NoGradGuard no_grad;
    m.eval();
    out["eval_loss"] = m.TrainLoss(m.Loss(m.Scores(batch), batch), batch).item<double>();
    m.train();
  }
  TrainOptions o;
  auto optimizer = MakeTaskOptimizer(m, OptionsFor(task).task, o);
  const std::vector<at::Tensor> params = optimizer->AllParams();
  // The loop's precision: fp16 autocast with dynamic loss scaling, bf16 autocast without.
  const AmpMode amp = f.amp == "fp16" ? AmpMode::kFp16 : f.amp == "bf16" ? AmpMode::kBf16 : AmpMode::kFp32;
  LossScaler scaler(amp == AmpMode::kFp16);
  const StepContext ctx{device, amp, &scaler, false};
  std::vector<double> ms, cpu_ms;
  std::unique_ptr<torch::autograd::profiler::RecordProfile> profiler;
  for (int i = 0; i < f.warmup + f.steps; ++i) {
    if (i == f.warmup && !f.profile.empty())
      profiler = std::make_unique<torch::autograd::profiler::RecordProfile>(f.profile);
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = uniter::bench::CpuSeconds();
    const double loss = ForwardBackward(m, batch, ctx).item<double>();
    ApplyUpdate(*optimizer, params, o.learning_rate, o.grad_norm, &scaler);
    if (device.is_cuda()) params.back().sum().item<double>();  // wait for the update's kernels
    const double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i >= f.warmup) {
      ms.push_back(t);
      cpu_ms.push_back((uniter::bench::CpuSeconds() - c0) * 1000.0);
    }
    out["loss"] = loss;
  }
  profiler.reset();
  out["ms"] = ms;
  out["median_ms"] = uniter::bench::Median(ms);
  out["cpu_ms"] = uniter::bench::Median(cpu_ms);
  out["vmhwm_mib"] = VmHwmMiB();
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

nlohmann::json RunSide(const Flags& f, const std::string& side, const std::string& task, const std::string& dir,
                       const std::string& threads) {
  const std::string common = " --threads " + threads + " --intra_op " + std::to_string(f.intra_op) + " --steps " + std::to_string(f.steps) + " --warmup " +
                             std::to_string(f.warmup) + " --device " + f.device + " --amp " + f.amp;
  std::string cmd;
  if (side == "ours") {
    cmd = fs::read_symlink("/proc/self/exe").string() + " --side ours --task " + task + " --case " + dir + common;
  } else {
    cmd = f.python + " " + UNITER_BENCH_SOURCE_DIR + "/trainer_step_peer.py --task " + task + " --case " + dir + common;
  }
  const std::string text = Shell(uniter::bench::BlasThreadsEnv(threads) + cmd);
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

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  std::string task_child;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--task") f.tasks = Split(v);
    else if (a == "--threads") f.threads = Split(v);
    else if (a == "--intra-op" || a == "--intra_op") f.intra_op = std::stoi(v);
    else if (a == "--sides") f.sides = Split(v);
    else if (a == "--steps") f.steps = std::stoi(v);
    else if (a == "--warmup") f.warmup = std::stoi(v);
    else if (a == "--device") f.device = v;
    else if (a == "--amp") f.amp = v;
    else if (a == "--dir") f.dir = v;
    else if (a == "--python") f.python = v;
    else if (a == "--side") f.side = v;
    else if (a == "--case") f.case_dir = v;
    else if (a == "--profile") f.profile = v;
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

  std::printf("trainer step: UNITER-base (12 layers, H 768, vocab 28996), device %s, amp %s, median of %d steps "
              "after %d warmup\n",
              f.device.c_str(), f.amp.c_str(), f.steps, f.warmup);
  for (const std::string& task : f.tasks) {
    const std::string dir = PrepareCase(f, task);
    std::printf("%s\n", task == "nlvr2" ? "NLVR2 paired-attn, 8 examples = 16 rows, 14-26 tokens + 36 boxes"
                                        : "VQA, 16 questions, 8-20 tokens + 36 boxes, 3129 answers");
    for (const std::string& t : f.threads) {
      std::map<std::string, nlohmann::json> r;
      for (const std::string& side : f.sides) r[side] = RunSide(f, side, task, dir, t);
      for (const std::string& side : f.sides)
        std::printf("  %s, %s thread(s): %s\n", side == "ours" ? "ours" : "peer", t.c_str(), Ms(r[side]).c_str());
      if (r.count("ours") && r.count("peer") && !r["ours"].contains("error") && !r["peer"].contains("error"))
        std::printf("  ratio ours/peer, %s thread(s): wall %.3f, CPU %.3f, peak RSS %.3f\n", t.c_str(),
                    r["ours"]["median_ms"].get<double>() / r["peer"]["median_ms"].get<double>(),
                    r["ours"]["cpu_ms"].get<double>() / r["peer"]["cpu_ms"].get<double>(),
                    r["ours"]["vmhwm_mib"].get<double>() / r["peer"]["vmhwm_mib"].get<double>());
      if (r.count("ours") && !r["ours"].contains("error"))
        std::printf("  ours consumes %.2f examples/s (%d per step; compare trainer_loader_bench's rate)\n",
                    (task == "nlvr2" ? 8 : 16) * 1000.0 / r["ours"]["median_ms"].get<double>(), task == "nlvr2" ? 8 : 16);
      std::fflush(stdout);
    }
  }
  return 0;
}

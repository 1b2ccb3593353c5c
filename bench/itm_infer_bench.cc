// ITM inference benchmark: every text × image pair of a generated split scored
// by `uniter infer itm`'s own ScoreMatrix (image mini-batches read from the
// img_db once and reused for every text) against the PyTorch restatement of
// UNITER's model (tests/trainer/uniter_itm_ref.py, via bench/itm_infer_peer.py)
// running inf_itm.py's loop (one forward per text per mini-batch), with the
// same weights (our checkpoint, loaded strict), the same features and the
// same torch threads, in the same run. Prints pairs/s and the ratio, and the
// largest score difference between the two.
//
//   itm_infer_bench [--texts 4] [--images 16] [--minibatch 16] [--threads 2]
//                   [--layers 12] [--hidden 768] [--dir DIR] [--python PY]
// Defaults: UNITER-base (12 layers, 768 hidden, 12 heads), 36 boxes per image,
// texts of 14-26 tokens.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "common/torch_runtime.h"
#include "featdb/img_db.h"
#include "featdb/txt_db.h"
#include "trainer/data/internal/itm.h"
#include "trainer/internal/checkpoint.h"
#include "trainer/internal/itm_run.h"
#include "trainer/internal/task_model.h"
#include "trainer/model.h"

namespace fs = std::filesystem;
using namespace uniter;

namespace {

struct Flags {
  int texts = 4, images = 16, minibatch = 16, threads = 2, layers = 12, hidden = 768;
  std::string dir = (fs::temp_directory_path() / "uniter_itm_bench").string();
  std::string python = std::string(std::getenv("HOME") ? std::getenv("HOME") : "") + "/.cache/uniter/venv/bin/python";
};

std::string Img(int i) { return "bench_" + std::to_string(i) + ".npz"; }

// img_db: `images` images of 36 boxes (2048-d features, 6-d boxes); txt_db:
// `texts` captions spread over them, with id2len, txt2img, img2txts, meta.
void WriteDbs(const Flags& f) {
  std::mt19937 gen(11);
  std::normal_distribution<float> noise(0.f, 1.f);
  std::uniform_real_distribution<float> unit(0.f, 1.f);
  constexpr int kBoxes = 36, kDim = 2048;
  featdb::ImgDbWriter iw(f.dir + "/img", featdb::ImgDbOptions{});
  for (int i = 0; i < f.images; ++i) {
    std::vector<float> feat(kBoxes * kDim), bb(kBoxes * 6), conf(kBoxes, 0.9f);
    for (auto& v : feat) v = std::abs(noise(gen));
    for (int b = 0; b < kBoxes; ++b) {
      const float x = unit(gen) * 0.5f, y = unit(gen) * 0.5f, w = 0.1f + unit(gen) * 0.4f, h = 0.1f + unit(gen) * 0.4f;
      float* r = &bb[b * 6];
      r[0] = x, r[1] = y, r[2] = x + w, r[3] = y + h, r[4] = w, r[5] = h;
    }
    iw.Put(Img(i), {featdb::Array::FromFloat32("features", {kBoxes, kDim}, feat),
                    featdb::Array::FromFloat32("norm_bb", {kBoxes, 6}, bb),
                    featdb::Array::FromFloat32("conf", {kBoxes}, conf)});
  }
  iw.Close();
  featdb::TxtDbWriter tw(f.dir + "/txt");
  nlohmann::ordered_json id2len = nlohmann::ordered_json::object(), txt2img = nlohmann::ordered_json::object(),
                         img2txts = nlohmann::ordered_json::object();
  std::uniform_int_distribution<int> tok(1000, 28000), len(12, 24);
  for (int i = 0; i < f.images; ++i) img2txts[Img(i)] = nlohmann::ordered_json::array();
  for (int t = 0; t < f.texts; ++t) {
    const std::string id = "t" + std::to_string(t), img = Img(t % f.images);
    std::vector<int32_t> ids(len(gen));
    for (auto& v : ids) v = tok(gen);
    featdb::Value ex = featdb::Value::Map();
    ex.Set("input_ids", featdb::Value::IntList(ids));
    ex.Set("img_fname", featdb::Value::Str(img));
    tw.Put(id, ex);
    id2len[id] = ids.size();
    txt2img[id] = img;
    img2txts[img].push_back(id);
  }
  tw.WriteJson("id2len.json", id2len);
  tw.WriteJson("txt2img.json", txt2img);
  tw.WriteJson("img2txts.json", img2txts);
  tw.WriteJson("meta.json", {{"CLS", 101}, {"SEP", 102}, {"MASK", 103}, {"v_range", {999, 28996}}, {"bert", "bench"}});
  tw.Close();
}

std::string Shell(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  if (pclose(p) != 0) std::fprintf(stderr, "command failed: %s\n", cmd.c_str());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--texts") f.texts = std::stoi(v);
    else if (k == "--images") f.images = std::stoi(v);
    else if (k == "--minibatch") f.minibatch = std::stoi(v);
    else if (k == "--threads") f.threads = std::stoi(v);
    else if (k == "--layers") f.layers = std::stoi(v);
    else if (k == "--hidden") f.hidden = std::stoi(v);
    else if (k == "--dir") f.dir = v;
    else if (k == "--python") f.python = v;
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  fs::remove_all(f.dir);
  fs::create_directories(f.dir);
  WriteDbs(f);
  const nlohmann::json cfg = {{"vocab_size", 28996}, {"hidden_size", f.hidden}, {"num_hidden_layers", f.layers},
                              {"num_attention_heads", f.hidden / 64}, {"intermediate_size", 4 * f.hidden},
                              {"hidden_act", "gelu"}, {"hidden_dropout_prob", 0.1},
                              {"attention_probs_dropout_prob", 0.1}, {"max_position_embeddings", 512},
                              {"type_vocab_size", 2}, {"initializer_range", 0.02}};
  { std::ofstream(f.dir + "/model.json") << cfg.dump(2); }
  uniter::ConfigureTorchThreads(f.threads);
  uniter::KeepFreedMemoryForReuse();  // as uniter infer does
  trainer::TaskOptions to;
  to.task = trainer::TaskKind::kItm;
  trainer::Model model(trainer::UniterConfig::FromJsonFile(f.dir + "/model.json"), to, 3);
  trainer::InitItmRankOutput(model.module());
  model.Save(f.dir + "/model.pt");

  const trainer::data::ItmDb db =
      trainer::data::OpenItmDb(f.dir + "/txt", f.dir + "/img", trainer::data::ImgDbOptions{}, -1, true);
  const std::vector<std::string> imgs = trainer::data::EvalImageOrder(db);
  const int64_t pairs = static_cast<int64_t>(db.ids.size() * imgs.size());
  // One warm-up mini-batch (one text), then the whole matrix timed.
  trainer::ScoreMatrix(model.module(), db, {db.ids[0]}, {imgs.begin(), imgs.begin() + f.minibatch}, f.minibatch, false);
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = uniter::bench::CpuSeconds();
  const std::vector<float> ours = trainer::ScoreMatrix(model.module(), db, db.ids, imgs, f.minibatch, false);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = uniter::bench::CpuSeconds() - c0;
  {
    // The peer's inputs: the very features and token ids ours read from the dbs.
    trainer::StateDict inputs;
    for (const auto& name : imgs) {
      const trainer::data::ImageFeat im = db.img->Get(name);
      at::Tensor feat = at::empty({im.nbb, im.feat_dim}, at::kFloat);
      im.CopyFeatures(feat.data_ptr<float>());
      inputs.emplace_back("feat." + name, feat);
      inputs.emplace_back("pos." + name, at::tensor(im.pos, at::kFloat).view({im.nbb, 7}));
      inputs.emplace_back("nbb." + name, at::tensor(im.nbb, at::kLong));
    }
    for (const auto& id : db.ids) inputs.emplace_back("txt." + id, at::tensor(trainer::data::TextInputs(db, id), at::kLong));
    trainer::WriteStateDict(inputs, f.dir + "/inputs.pt");
    std::ofstream out(f.dir + "/ours.json");
    out << nlohmann::json{{"txt_ids", db.ids}, {"img_ids", imgs}, {"scores", ours}}.dump();
  }
  const std::string peer_py = std::string(UNITER_BENCH_SOURCE_DIR) + "/itm_infer_peer.py";
  std::string cmd = uniter::bench::BlasThreadsEnv(std::to_string(f.threads));
  cmd += f.python + " " + peer_py + " --dir " + f.dir + " --threads " + std::to_string(f.threads) + " --minibatch " +
         std::to_string(f.minibatch);
  const std::string out = Shell(cmd);
  nlohmann::json peer;
  try {
    peer = nlohmann::json::parse(out);
  } catch (const std::exception&) {
    std::fprintf(stderr, "peer output: %s\n", out.c_str());
    return 1;
  }
  const double ours_pps = pairs / secs, peer_pps = pairs / peer.at("seconds").get<double>();
  std::printf("itm infer: %d layers, hidden %d, %d texts x %d images (%lld pairs, mini-batch %d, 36 boxes), "
              "%d threads\n",
              f.layers, f.hidden, f.texts, f.images, static_cast<long long>(pairs), f.minibatch, f.threads);
  const double peer_cpu = peer.at("cpu_seconds").get<double>();
  std::printf("ours %.2f pairs/s (%.2f s wall, %.2f s CPU), peer %.2f pairs/s (%.2f s wall, %.2f s CPU)\n", ours_pps,
              secs, cpu, peer_pps, peer.at("seconds").get<double>(), peer_cpu);
  std::printf("ratio ours/peer: %.2fx pairs/s (wall), %.2fx (CPU time); max |score diff| %.2e\n",
              ours_pps / peer_pps, peer_cpu / cpu, peer.at("max_abs_diff").get<double>());
  return 0;
}

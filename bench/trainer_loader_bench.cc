// trainer loader benchmark: examples/s of PrefetchLoader (LMDB read → decode →
// collate on TBB threads) over a generated NLVR2 paired txt_db + img_db
// (2048-d fp16 features, msgpack codec, UNITER's train batching: 10240 tokens,
// bucket 8192), against the Python restatement of UNITER's loader
// (tests/trainer/uniter_data_ref.py, one process = DataLoader n_workers 0) on
// the same db in the same run.
//
//   trainer_loader_bench [--dir DIR] [--python PY] [--scale N] [--epochs N] [--threads 1,2] [--repeat N]
#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "trainer/data/datasets.h"
#include "trainer/data/internal/loader.h"
#include "trainer/data/py_random.h"
#include "trainer/data/token_bucket_sampler.h"

namespace fs = std::filesystem;
using namespace uniter::trainer::data;

namespace {

double Now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::string Shell(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  if (pclose(p) != 0) {
    std::fprintf(stderr, "command failed: %s\n", cmd.c_str());
    std::exit(1);
  }
  return out;
}

std::vector<int> ParseList(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(std::stoi(item));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = (fs::temp_directory_path() / "uniter_loader_bench").string();
  std::string python = std::string(std::getenv("HOME") ? std::getenv("HOME") : "") + "/.cache/uniter/venv/bin/python";
  int scale = 20, epochs = 2, repeat = 1;
  std::vector<int> threads = {1, 2};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--dir") dir = v;
    else if (a == "--python") python = v;
    else if (a == "--scale") scale = std::stoi(v);
    else if (a == "--epochs") epochs = std::stoi(v);
    else if (a == "--threads") threads = ParseList(v);
    else if (a == "--repeat") repeat = std::stoi(v);
    else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  const std::string script = std::string(UNITER_BENCH_SOURCE_DIR) + "/../tests/trainer/uniter_data_ref.py";
  if (!fs::exists(dir + "/db/nlvr2")) {
    fs::create_directories(dir);
    Shell(python + " " + script + " gen " + dir + "/db 5 2048 " + std::to_string(scale));
  }
  const nlohmann::json c = {{"task", "nlvr2-paired"}, {"txt_dbs", {dir + "/db/nlvr2"}}, {"img_db", dir + "/db/img"},
                            {"conf_th", 0.2}, {"max_bb", 100}, {"min_bb", 10}, {"num_bb", 36},
                            {"compressed_db", false}, {"max_txt_len", 60}, {"is_train", true},
                            {"batch_size", 10240}, {"bucket_size", 8192}, {"seed", 77}, {"epochs", epochs},
                            {"rank", 0}, {"world", 1}, {"use_img_type", true}, {"num_answers", 3129}};
  {
    FILE* f = fopen((dir + "/case.json").c_str(), "w");
    fputs(c.dump().c_str(), f);
    fclose(f);
  }

  auto img = std::make_shared<const ImgFeatDb>(dir + "/db/img", ImgDbOptions{});
  auto txt = std::make_shared<const TxtTokDb>(dir + "/db/nlvr2", 60);
  DatasetOptions o;
  o.task = Task::kNlvr2Paired;
  auto ds = std::make_shared<const TaskDataset>(std::vector<DbPair>{{txt, img}}, o);
  TokenBucketSampler sampler(ds->lens(), {8192, 10240, true, 8});
  std::printf("trainer loader: NLVR2 paired, %lld examples, 2048-d fp16 msgpack img_db, 10240-token batches, %d epochs\n",
              static_cast<long long>(ds->size()), epochs);

  for (int r = 0; r < repeat; ++r) {
    std::vector<double> ours;
    for (int t : threads) {
      PyRandom rng(77);
      auto pool = MakeFeatBufferPool();
      int64_t n = 0, rows = 0;
      const double start = Now();
      for (int e = 0; e < epochs; ++e) {
        PrefetchLoader loader(ds, sampler.Batches(rng), LoaderOptions{nullptr, t, 4, true, pool});
        while (auto b = loader.Next()) {
          n += b->num_examples;
          rows += b->input_ids.size(0);
        }
      }
      const double s = Now() - start;
      ours.push_back(n / s);
      std::printf("  ours, %d TBB thread(s): %8.1f examples/s (%lld examples, %.2f s)\n", t, n / s,
                  static_cast<long long>(n), s);
    }
    const auto py = nlohmann::json::parse(Shell(python + " " + script + " bench " + dir + "/case.json"));
    const double py_rate = py["examples"].get<double>() / py["seconds"].get<double>();
    std::printf("  UNITER's loader (Python restatement, 1 process): %8.1f examples/s (%lld examples, %.2f s)\n",
                py_rate, py["examples"].get<long long>(), py["seconds"].get<double>());
    for (size_t i = 0; i < threads.size(); ++i)
      std::printf("  ratio ours/python with %d thread(s): %.2fx\n", threads[i], ours[i] / py_rate);
  }
  return 0;
}

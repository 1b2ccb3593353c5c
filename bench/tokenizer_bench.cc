// bench/tokenizer: throughput of uniter::tokenizer (BERT WordPiece, UNITER's
// bert_tokenize) on English captions (NLVR2 dev+test1 sentences + Conceptual
// Captions validation) and on a CJK-heavy text, single thread and 2 threads,
// with the peers run on the same lines file in the same run
// (bench/tokenizer_peers.py): HF tokenizers (batch API, 1 thread),
// flash-tokenizer (1 thread) and pytorch-pretrained-bert 0.6.2.
// Targets, single thread on English: >= 10x HF and faster than flash; on
// CJK-heavy text >= 1x HF.
//
//   tokenizer_bench [--data DIR] [--python PY] [--seconds S] [--no-peers]
//
// Single-thread rates use process CPU time on both sides (robust to other load
// on a shared VM); 2-thread rates use wall time.
#include <sys/resource.h>
#include <unistd.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "tokenizer/bert_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

using uniter::bench::CpuSeconds;

std::vector<std::string> EnglishLines(const std::string& data) {
  std::vector<std::string> out;
  for (const char* split : {"dev", "test1"}) {
    std::ifstream in(data + "/nlvr2/" + split + ".json");
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) out.push_back(nlohmann::json::parse(line).at("sentence").get<std::string>());
  }
  std::ifstream cc(data + "/cc/Validation_GCC-1.1.0-Validation.tsv");
  for (std::string line; std::getline(cc, line);) out.push_back(line.substr(0, line.find('\t')));
  return out;
}

// CJK-heavy lines: runs of CJK ideographs the vocab knows, CJK punctuation,
// now and then a number or a Latin word (seeded, so every run is the same).
std::vector<std::string> CjkLines(const uniter::tokenizer::Tokenizer& tok) {
  std::vector<std::string> hanzi;
  for (size_t id = 0; id < tok.VocabSize(); ++id) {
    const std::string& t = tok.IdToToken(static_cast<int32_t>(id));
    if (t.size() == 3 && static_cast<unsigned char>(t[0]) >= 0xE4 && static_cast<unsigned char>(t[0]) <= 0xE9)
      hanzi.push_back(t);
  }
  const std::vector<std::string> punct = {"，", "。", "、", "！", "？", "：", "「", "」"};
  const std::vector<std::string> latin = {"AI", "GPU", "iPhone", "2024", "3.5", "OK", "Wi-Fi", "USB"};
  std::mt19937 rng(42);
  std::vector<std::string> out;
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    const int n = 20 + static_cast<int>(rng() % 40);
    for (int k = 0; k < n; ++k) {
      const uint32_t r = rng() % 100;
      if (r < 85) s += hanzi[rng() % hanzi.size()];
      else if (r < 95) s += punct[rng() % punct.size()];
      else s += " " + latin[rng() % latin.size()] + " ";
    }
    out.push_back(s);
  }
  return out;
}

size_t Bytes(const std::vector<std::string>& lines) {
  size_t n = 0;
  for (const auto& l : lines) n += l.size();
  return n;
}

// MB/s of encoding every line once per repetition, on the calling thread.
double SingleThread(const uniter::tokenizer::Tokenizer& tok, const std::vector<std::string>& lines,
                    double seconds) {
  size_t sink = 0;
  for (const auto& l : lines) sink += tok.Encode(l).size();  // warm up
  int reps = 0;
  const double t0 = CpuSeconds();
  double dt = 0;
  do {
    for (const auto& l : lines) sink += tok.Encode(l).size();
    ++reps;
    dt = CpuSeconds() - t0;
  } while (dt < seconds || reps < 2);
  if (sink == 0) std::fprintf(stderr, "no tokens?\n");
  return static_cast<double>(Bytes(lines)) * reps / dt / 1e6;
}

double Threads(const uniter::tokenizer::Tokenizer& tok, const std::vector<std::string>& lines, int threads,
               double seconds) {
  std::vector<std::string_view> views(lines.begin(), lines.end());
  tbb::task_arena arena(threads);
  double best = 0;
  arena.execute([&] {
    tok.EncodeBatch(views);  // warm up
    const auto t0 = Clock::now();
    int reps = 0;
    double dt = 0;
    do {
      tok.EncodeBatch(views);
      ++reps;
      dt = std::chrono::duration<double>(Clock::now() - t0).count();
    } while (dt < seconds || reps < 2);
    best = static_cast<double>(Bytes(lines)) * reps / dt / 1e6;
  });
  return best;
}

std::string Num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, v >= 100 ? "%.0f" : v >= 10 ? "%.1f" : "%.2f", v);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = UNITER_BENCH_SHARED_DATA;
  std::string python = std::string(std::getenv("HOME") ? std::getenv("HOME") : "") + "/.cache/uniter/venv/bin/python";
  double seconds = 2.0;
  bool peers = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--data" && i + 1 < argc) data = argv[++i];
    else if (a == "--python" && i + 1 < argc) python = argv[++i];
    else if (a == "--seconds" && i + 1 < argc) seconds = std::atof(argv[++i]);
    else if (a == "--no-peers") peers = false;
    else {
      std::fprintf(stderr, "usage: tokenizer_bench [--data DIR] [--python PY] [--seconds S] [--no-peers]\n");
      return 2;
    }
  }
  const std::string vocab = data + "/vocab/bert-base-uncased-vocab.txt";
  uniter::tokenizer::TokenizerOptions opts;
  opts.vocab_path = vocab;
  const auto fused = uniter::tokenizer::BertTokenizer::Load(opts, true);
  const auto staged = uniter::tokenizer::BertTokenizer::Load(opts, false);

  struct Corpus {
    std::string name;
    std::vector<std::string> lines;
  };
  std::vector<Corpus> corpora = {{"english (NLVR2+CC)", EnglishLines(data)}, {"CJK-heavy", CjkLines(*fused)}};
  const fs::path tmp = fs::temp_directory_path() / ("uniter-tokenizer-bench-" + std::to_string(getpid()));
  fs::create_directories(tmp);

  std::printf("bench/tokenizer: bert-base-uncased, lower-case, UNITER bert_tokenize; MB/s of UTF-8 input\n");
  std::printf("%-20s %6s %8s %8s %8s %8s %8s %8s %8s %8s | %7s %8s %7s\n", "corpus", "MB", "ours-1t", "staged",
              "HF-1t", "flash-1t", "ppb", "wall-1t", "wall-2t", "2t/1t", "xHF", "xflash", "xppb");
  int failed = 0;
  for (size_t c = 0; c < corpora.size(); ++c) {
    const Corpus& corpus = corpora[c];
    const double one = SingleThread(*fused, corpus.lines, seconds);
    const double wall1 = Threads(*fused, corpus.lines, 1, seconds);
    const double two = Threads(*fused, corpus.lines, 2, seconds);
    const double st = SingleThread(*staged, corpus.lines, seconds / 2);
    double hf = 0, flash = 0, ppb = 0;
    if (peers) {
      const std::string file = (tmp / ("lines" + std::to_string(c) + ".txt")).string();
      {
        std::ofstream f(file, std::ios::binary);
        for (const auto& l : corpus.lines) f << l << '\n';
      }
      const std::string cmd = "'" + python + "' '" + UNITER_BENCH_SOURCE_DIR + "/tokenizer_peers.py' --vocab '" +
                              vocab + "' --lower 1 --input '" + file + "' --seconds " + std::to_string(seconds);
      FILE* p = popen(cmd.c_str(), "r");
      std::string out;
      char buf[4096];
      size_t n;
      while (p && (n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
      if (!p || pclose(p) != 0 || out.empty()) {
        std::fprintf(stderr, "peer script failed: %s\n", cmd.c_str());
        return 1;
      }
      const auto j = nlohmann::json::parse(out);
      hf = j.value("hf", 0.0);
      flash = j["flash"].is_number() ? j["flash"].get<double>() : 0.0;
      ppb = j.value("ppb", 0.0);
    }
    auto ratio = [&](double peer) { return peer > 0 ? Num(one / peer) + "x" : std::string("-"); };
    std::printf("%-20s %6.2f %8s %8s %8s %8s %8s %8s %8s %8s | %7s %8s %7s\n", corpus.name.c_str(),
                static_cast<double>(Bytes(corpus.lines)) / 1e6, Num(one).c_str(), Num(st).c_str(), Num(hf).c_str(),
                Num(flash).c_str(), Num(ppb).c_str(), Num(wall1).c_str(), Num(two).c_str(),
                (Num(two / wall1) + "x").c_str(), ratio(hf).c_str(), ratio(flash).c_str(), ratio(ppb).c_str());
    if (peers) {
      if (c == 0 && (one < 10 * hf || one <= flash)) ++failed;
      if (c == 1 && one < hf) ++failed;
    }
  }
  fs::remove_all(tmp);
  std::printf("1t columns and ratios: process CPU time, both sides; wall-1t/wall-2t: wall clock via EncodeBatch.\n"
              "staged = the step-by-step path (same ids), for the fused path's gain.\n");
  if (peers)
    std::printf("targets (1 thread): english >= 10x HF and > flash; CJK >= 1x HF: %s\n", failed ? "MISSED" : "met");
  return 0;
}

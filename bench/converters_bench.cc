// bench/converters: NLVR2 dev + test1 converted end to end (`uniter convert
// nlvr2`: read, parse, tokenize, build records, msgpack + lz4, LMDB, sidecars)
// against the same sentences through the tokenizer alone, in the same run, on
// 1 and 2 threads. Target: end-to-end overhead <= 30 % over tokenizing.
//
//   converters_bench [--data DIR] [--vocab FILE] [--repeat N] [--tmp DIR]
#include <sys/resource.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "converters/convert.h"
#include "featdb/txt_db.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

using uniter::bench::CpuSeconds;
using uniter::bench::Median;

int main(int argc, char** argv) {
  std::string data = UNITER_BENCH_SHARED_DATA;
  std::string vocab;
  std::string tmp = (fs::temp_directory_path() / "uniter_converters_bench").string();
  int repeat = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--data") data = argv[i + 1];
    else if (a == "--vocab") vocab = argv[i + 1];
    else if (a == "--repeat") repeat = std::atoi(argv[i + 1]);
    else if (a == "--tmp") tmp = argv[i + 1];
  }
  if (vocab.empty()) vocab = data + "/vocab/bert-base-cased-vocab.txt";
  const std::vector<std::string> anns = {data + "/nlvr2/dev.json", data + "/nlvr2/test1.json"};

  // The peer's input: the same sentences, extracted outside the timing.
  std::vector<std::string> sentences;
  size_t bytes = 0;
  for (const auto& a : anns) {
    std::ifstream in(a);
    if (!in) {
      std::fprintf(stderr, "converters_bench: cannot read %s\n", a.c_str());
      return 1;
    }
    std::string line;
    while (std::getline(in, line)) {
      bytes += line.size() + 1;
      if (!line.empty()) sentences.push_back(nlohmann::json::parse(line)["sentence"]);
    }
  }
  std::vector<std::string_view> views(sentences.begin(), sentences.end());

  uniter::tokenizer::TokenizerOptions to;
  to.vocab_path = vocab;
  const auto toker = uniter::tokenizer::CreateTokenizer(to);

  std::printf("converters_bench: NLVR2 dev+test1, %zu examples, %.1f MB of JSON lines, vocab %s\n",
              sentences.size(), bytes / 1e6, toker->Name().c_str());
  std::printf("%-8s %14s %14s %10s %12s %14s %12s %10s %18s\n", "threads", "tokenize (ms)", "convert (ms)",
              "overhead", "examples/s", "db write (ms)", "encode (ms)", "rest (ms)", "cpu tok/conv (ms)");
  size_t tokens = 0;
  for (int threads : {1, 2}) {
    std::vector<double> tok_s, e2e_s, write_s, enc_s, tok_cpu, e2e_cpu;
    for (int r = 0; r < repeat; ++r) {
      tbb::task_arena arena(threads);
      const auto t0 = Clock::now();
      const double c0 = CpuSeconds();
      std::vector<std::vector<int32_t>> ids;
      arena.execute([&] { ids = toker->EncodeBatch(views); });
      tok_s.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
      tok_cpu.push_back(CpuSeconds() - c0);
      tokens = 0;
      for (const auto& v : ids) tokens += v.size();

      uniter::converters::ConvertOptions o;
      o.task = "nlvr2";
      o.annotations = anns;
      o.output = tmp + "/nlvr2.db";
      o.threads = threads;
      o.quiet = true;
      fs::remove_all(o.output);
      const auto t1 = Clock::now();
      const double c1 = CpuSeconds();
      const auto summary = uniter::converters::RunConvert(o, *toker);
      e2e_s.push_back(std::chrono::duration<double>(Clock::now() - t1).count());
      e2e_cpu.push_back(CpuSeconds() - c1);
      if (summary.examples != sentences.size() || summary.rejects != 0) {
        std::fprintf(stderr, "converters_bench: converted %llu examples, %llu rejects\n",
                     static_cast<unsigned long long>(summary.examples),
                     static_cast<unsigned long long>(summary.rejects));
        return 1;
      }
      // The storage floor: the same encoded records put into a fresh db by
      // featdb's writer alone (LMDB puts + commit + close).
      std::vector<std::pair<std::string, std::string>> records;
      {
        uniter::featdb::TxtDbReader reader(o.output);
        for (const auto& k : reader.Keys()) records.emplace_back(k, *reader.GetRaw(k));
      }
      // The encoding floor: msgpack + lz4 frame of the same records (decoded
      // outside the timing), on `threads` threads.
      {
        std::vector<uniter::featdb::Value> values;
        for (const auto& [k, v] : records)
          values.push_back(uniter::featdb::DecodeMsgpack(uniter::featdb::Lz4FrameDecompress(v)));
        std::vector<std::string> encoded(values.size());
        const auto te = Clock::now();
        arena.execute([&] {
          tbb::parallel_for(size_t{0}, values.size(), [&](size_t i) {
            encoded[i] = uniter::featdb::Lz4FrameCompress(uniter::featdb::EncodeMsgpack(values[i]));
          });
        });
        enc_s.push_back(std::chrono::duration<double>(Clock::now() - te).count());
      }
      const std::string copy = tmp + "/copy.db";
      fs::remove_all(copy);
      const auto t2 = Clock::now();
      {
        uniter::featdb::TxtDbWriterOptions wo;
        wo.commit_every = records.size() + 1;
        uniter::featdb::TxtDbWriter w(copy, wo);
        for (auto& [k, v] : records) w.PutRaw(k, std::move(v));
        w.Close();
      }
      write_s.push_back(std::chrono::duration<double>(Clock::now() - t2).count());
    }
    const double t = Median(tok_s), e = Median(e2e_s), w = Median(write_s), c = Median(enc_s);
    std::printf("%-8d %14.1f %14.1f %9.1f%% %12.0f %14.1f %12.1f %10.1f %8.1f/%-8.1f\n", threads, t * 1e3, e * 1e3,
                (e / t - 1) * 100, sentences.size() / e, w * 1e3, c * 1e3, (e - t - w - c) * 1e3,
                Median(tok_cpu) * 1e3, Median(e2e_cpu) * 1e3);
  }
  std::printf("(%zu tokens; median of %d runs; overhead = convert / tokenize - 1, target <= 30%%;\n"
              " db write = the same encoded records put by featdb's TxtDbWriter alone;\n"
              " encode = featdb's msgpack + lz4 frame of the same records alone;\n"
              " rest = convert - tokenize - db write - encode: reading, JSON, records, sidecars, pipeline;\n"
              " cpu = CPU time of the process, all threads)\n",
              tokens, repeat);
  fs::remove_all(tmp);
  return 0;
}

// `uniter --version` names the BLAS library LibTorch really runs on and its
// intra-op thread count, checked against what the dynamic loader maps
// (ldd's resolution of libblas.so.3, this process's /proc/self/maps) and
// nproc, with the system's default BLAS and with LD_LIBRARY_PATH pointing at
// netlib's reference BLAS: a hard-coded name could not pass both.
#include <torch/torch.h>

#include <dlfcn.h>
#include <sys/resource.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>

#include "common/torch_runtime.h"
#include "tests/test_util.h"

namespace uniter {
namespace {

namespace fs = std::filesystem;
using ::uniter::testing::Quote;

struct Reported {
  std::string blas, path;
  int threads = -1;
};

Reported VersionLine(const std::string& env) {
  const auto r = ::uniter::testing::Run(env + " " + Quote(::uniter::testing::UniterBinary()) + " --version 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  std::smatch m;
  Reported out;
  if (std::regex_search(r.out, m, std::regex(R"(BLAS: (.*) \((/[^)]*)\), (\d+) intra-op threads)"))) {
    out.blas = m[1];
    out.path = m[2];
    out.threads = std::stoi(m[3]);
  } else {
    ADD_FAILURE() << "no BLAS line in: " << r.out;
  }
  return out;
}

// The libblas.so.3 the loader picks for the plugin under `env`, symlinks resolved.
std::string LddBlas(const std::string& env) {
  const fs::path plugin =
      fs::path(::uniter::testing::UniterBinary()).parent_path().parent_path() / "lib/uniter/libuniter_torch_commands.so";
  const auto r = ::uniter::testing::Run(env + " ldd " + Quote(plugin.string()) + " 2>&1");
  std::smatch m;
  if (!std::regex_search(r.out, m, std::regex(R"(libblas\.so\.3 => (\S+))"))) return "(not in ldd: " + r.out + ")";
  return fs::canonical(m[1].str()).string();
}

int Nproc() { return std::stoi(::uniter::testing::Run("nproc").out); }

// True when `lib` itself defines the BLAS entry point (sgemm_), as PyPI's
// LibTorch does with the MKL linked into libtorch_cpu.so.
bool DefinesSgemm(const std::string& lib) {
  const auto r = ::uniter::testing::Run("nm -D --defined-only " + Quote(lib) + " 2>&1");
  return std::regex_search(r.out, std::regex(R"( T sgemm_\n)"));
}

TEST(TorchRuntime, VersionNamesTheBlasTheLoaderMaps) {
  const Reported def = VersionLine("");
  const std::string reference_dir = "/usr/lib/x86_64-linux-gnu/blas";
  const std::string env = "LD_LIBRARY_PATH=" + reference_dir;
  if (fs::path(def.path).filename().string().rfind("libtorch", 0) == 0) {
    // A LibTorch that carries its own BLAS (PyPI's, with MKL inside
    // libtorch_cpu.so): the loader's libblas.so.3 is not what it runs on, and
    // no LD_LIBRARY_PATH can switch it.
    EXPECT_TRUE(DefinesSgemm(def.path)) << def.path;
    EXPECT_NE(def.blas.find("Math Kernel Library"), std::string::npos) << def.blas;
    const Reported switched = VersionLine(env);
    EXPECT_EQ(switched.path, def.path);
    EXPECT_EQ(switched.blas, def.blas);
    EXPECT_EQ(def.threads, Nproc());
    return;
  }
  EXPECT_EQ(def.path, LddBlas(""));
  EXPECT_EQ(def.path.find("openblas") != std::string::npos, def.blas.rfind("OpenBLAS", 0) == 0)
      << def.blas << " at " << def.path;
  EXPECT_EQ(def.threads, Nproc());

  // This test process links LibTorch the same way: the library is mapped here.
  at::mm(torch::ones({4, 4}), torch::ones({4, 4}));
  std::ifstream maps("/proc/self/maps");
  bool mapped = false;
  for (std::string line; std::getline(maps, line);) {
    const size_t slash = line.find('/');
    std::error_code ec;
    if (slash != std::string::npos && fs::canonical(line.substr(slash), ec).string() == def.path) mapped = true;
  }
  EXPECT_TRUE(mapped) << def.path << " is not in /proc/self/maps";
  EXPECT_EQ(DescribeTorchRuntime().blas_path, def.path);

  UNITER_REQUIRE_REFERENCE(fs::exists(reference_dir + "/libblas.so.3"))
      << "no reference BLAS (libblas3) to switch to";
  const Reported ref = VersionLine(env);
  EXPECT_EQ(ref.path, LddBlas(env));
  EXPECT_EQ(ref.path, fs::canonical(reference_dir + "/libblas.so.3").string());
  EXPECT_NE(ref.blas.rfind("OpenBLAS", 0), 0u) << ref.blas;
  EXPECT_EQ(ref.threads, Nproc());
  EXPECT_NE(ref.path, def.path) << "the default BLAS is the reference one: the switch shows nothing";
}

TEST(TorchRuntime, ConfigureThreadsSetsLibTorchsPool) {
  EXPECT_EQ(ConfigureTorchThreads(1), 1);
  EXPECT_EQ(at::get_num_threads(), 1);
  EXPECT_EQ(ConfigureTorchThreads(0), Nproc());
  EXPECT_EQ(DescribeTorchRuntime().intra_op_threads, Nproc());
}

// Minor page faults while touching every page of a fresh `bytes` malloc block
// (freed again): what a training step pays per activation buffer.
long FaultsOfAFreshBlock(size_t bytes) {
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  auto* p = static_cast<volatile char*>(std::malloc(bytes));
  for (size_t i = 0; i < bytes; i += 4096) p[i] = 1;
  std::free(const_cast<char*>(p));
  getrusage(RUSAGE_SELF, &after);
  return after.ru_minflt - before.ru_minflt;
}

// Freed blocks come back without faulting their pages in again.
TEST(TorchRuntime, KeepFreedMemoryForReuseStopsRefaulting) {
#ifndef __GLIBC__
  GTEST_SKIP() << "not glibc's malloc";
#endif
  constexpr size_t kBytes = 64 << 20;  // above glibc's largest dynamic mmap threshold (32 MiB)
  constexpr long kPages = kBytes / 4096;
  FaultsOfAFreshBlock(kBytes);
  const long by_default = FaultsOfAFreshBlock(kBytes);
  EXPECT_GE(by_default, kPages * 9 / 10) << "the control: glibc maps and unmaps a 64 MiB block each time";
  KeepFreedMemoryForReuse();
  FaultsOfAFreshBlock(kBytes);  // the first one faults in once, into the heap
  EXPECT_LE(FaultsOfAFreshBlock(kBytes), kPages / 100);
}

// OpenBLAS's own pool follows the count too (its get_num_threads, asked of
// the library itself); DescribeTorchRuntime reports it.
TEST(TorchRuntime, ConfigureThreadsSizesOpenBlassPool) {
  using GetFn = int (*)();
  auto get = reinterpret_cast<GetFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (get == nullptr) GTEST_SKIP() << "the BLAS in this process is not OpenBLAS: " << DescribeTorchRuntime().blas;
  ConfigureTorchThreads(1);
  EXPECT_EQ(get(), 1);
  EXPECT_NE(DescribeTorchRuntime().blas.find(", 1 BLAS threads"), std::string::npos) << DescribeTorchRuntime().blas;
  ConfigureTorchThreads(0);
  EXPECT_EQ(get(), Nproc());
  EXPECT_EQ(ConfigureTorchThreads(2, 1), 1);  // the GEMMs get 2, LibTorch's own ops 1
  EXPECT_EQ(at::get_num_threads(), 1);
  EXPECT_EQ(get(), 2);
}

}  // namespace
}  // namespace uniter

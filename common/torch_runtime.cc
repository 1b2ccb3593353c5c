#include "common/torch_runtime.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <link.h>
#include <malloc.h>
#include <sched.h>
#include <torch/version.h>

#include <filesystem>
#include <limits>
#include <thread>

namespace uniter {
namespace {

int UsableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

// The first loaded object from which sgemm_ resolves (searching it and its
// dependencies), as the handle and the address.
struct Sgemm {
  void* handle = nullptr;
  void* address = nullptr;
};

int FindSgemm(dl_phdr_info* info, size_t, void* data) {
  auto* out = static_cast<Sgemm*>(data);
  const char* name = info->dlpi_name;
  if (name == nullptr || *name == '\0') return 0;
  void* h = dlopen(name, RTLD_LAZY | RTLD_NOLOAD);
  if (h == nullptr) return 0;
  if (void* p = dlsym(h, "sgemm_")) {
    out->handle = h;
    out->address = p;
    return 1;
  }
  dlclose(h);
  return 0;
}

// The library's own name for itself, where it has a symbol that says it.
std::string NameBlas(void* handle) {
  using ConfigFn = char* (*)();
  if (auto f = reinterpret_cast<ConfigFn>(dlsym(handle, "openblas_get_config"))) {
    std::string s = f();  // "OpenBLAS 0.3.21 DYNAMIC_ARCH ..."
    if (s.rfind("OpenBLAS", 0) != 0) s = "OpenBLAS " + s;
    if (auto n = reinterpret_cast<int (*)()>(dlsym(handle, "openblas_get_num_threads")))
      s += ", " + std::to_string(n()) + " BLAS threads";
    return s;
  }
  if (auto f = reinterpret_cast<void (*)(char*, int)>(dlsym(handle, "MKL_Get_Version_String"))) {
    char buf[256] = {};
    f(buf, sizeof buf - 1);
    return buf;
  }
  if (auto f = reinterpret_cast<const char* (*)()>(dlsym(handle, "bli_info_get_version_str")))
    return std::string("BLIS ") + f();
  // netlib's reference BLAS has no version symbol.
  return "netlib reference BLAS or an unidentified one (it exports no version symbol)";
}

}  // namespace

int ConfigureTorchThreads(int threads, int intra_op_threads) {
  const int n = threads > 0 ? threads : UsableCores();
  const int intra = intra_op_threads > 0 ? intra_op_threads : n;
  if (at::get_num_threads() != intra) at::set_num_threads(intra);
  // A pthreads OpenBLAS (Debian's) keeps its own pool of one thread per core,
  // which at::set_num_threads does not size (MKL's it does): without this a
  // 1-thread run still spins a second core and 2 threads oversubscribe 2.
  using SetFn = void (*)(int);
  if (auto set = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(n);
  return at::get_num_threads();
}

void KeepFreedMemoryForReuse() {
#ifdef __GLIBC__
  // A fixed threshold also stops glibc's dynamic one (which tops out at 32 MiB).
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
#endif
}

TorchRuntimeInfo DescribeTorchRuntime() {
  TorchRuntimeInfo info;
  info.torch_version = TORCH_VERSION;
  info.intra_op_threads = at::get_num_threads();
  info.inter_op_threads = at::get_num_interop_threads();
  info.mkldnn = at::hasMKLDNN();
  Sgemm s;
  dl_iterate_phdr(FindSgemm, &s);
  Dl_info where{};
  if (s.address == nullptr || dladdr(s.address, &where) == 0 || where.dli_fname == nullptr) {
    info.blas = "none found (sgemm_ is not loaded)";
    return info;
  }
  std::error_code ec;
  const auto real = std::filesystem::canonical(where.dli_fname, ec);
  info.blas_path = ec ? where.dli_fname : real.string();
  // Name the library that defines sgemm_, not the first object it resolved through.
  void* defining = dlopen(where.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
  info.blas = NameBlas(defining ? defining : s.handle);
  if (defining) dlclose(defining);
  dlclose(s.handle);
  return info;
}

std::string FormatTorchRuntime(const TorchRuntimeInfo& i) {
  return "LibTorch " + i.torch_version + ", BLAS: " + i.blas + " (" + i.blas_path + "), " +
         std::to_string(i.intra_op_threads) + " intra-op threads, " + std::to_string(i.inter_op_threads) +
         " inter-op threads, oneDNN: " + (i.mkldnn ? "yes" : "no");
}

}  // namespace uniter

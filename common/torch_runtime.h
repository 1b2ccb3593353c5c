// LibTorch's CPU runtime as this process has it: which BLAS library is
// actually mapped (LibTorch links libblas.so.3, which the system's
// alternatives point at netlib's reference BLAS or OpenBLAS, 20x apart) and
// how many intra-op threads run. Built only with LibTorch (uniter::torch_runtime);
// the extractor and the trainer both configure threads through it, and
// `uniter --version` and their start-up lines print it.
#pragma once

#include <string>

namespace uniter {

struct TorchRuntimeInfo {
  std::string torch_version;  // e.g. "1.13.0"
  std::string blas;           // e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64"
  std::string blas_path;      // the file sgemm_ is defined in, symlinks resolved
  int intra_op_threads = 0;   // at::get_num_threads()
  int inter_op_threads = 0;   // at::get_num_interop_threads()
  bool mkldnn = false;        // at::hasMKLDNN(): oneDNN convolutions available
};

// Sets LibTorch's intra-op thread count: `threads` > 0 as given, else every
// core this process may run on (Debian's LibTorch defaults to 1 on some
// machines), and an OpenBLAS's own thread pool to the same count. Returns the
// intra-op count in effect. Call before the first tensor op.
// intra_op_threads > 0 gives LibTorch's pool that count instead, the BLAS
// keeping `threads`: a pthreads OpenBLAS's idle threads spin for a while
// after each GEMM, and LibTorch's elementwise ops on the same cores then
// run slower than on one thread (bench/RESULTS.md, trainer step).
int ConfigureTorchThreads(int threads, int intra_op_threads = 0);

// Makes glibc's malloc keep freed tensor memory for reuse: no mmap for
// blocks under 1 GiB, no trimming of the heap's free top. A training step
// frees and re-allocates the same hundreds of MB of activations every step;
// by default each such block is a fresh mmap whose pages fault in (and are
// zeroed by the kernel) again, ~3 % of a UNITER-base CPU step. The resident
// set then stays at its high-water mark (as PyTorch's CUDA caching allocator
// does). Process-wide: only a command that owns the process (train,
// pretrain, infer, pipeline) calls it. No-op off glibc.
void KeepFreedMemoryForReuse();

// Resolves the BLAS behind LibTorch's sgemm_ by address, so the answer is the
// library the dynamic loader picked (LD_LIBRARY_PATH, alternatives), not a guess.
TorchRuntimeInfo DescribeTorchRuntime();

// "LibTorch 1.13.0, BLAS: OpenBLAS 0.3.21 ... (/usr/lib/.../libblas.so.3), 2 intra-op threads, 2 inter-op threads, oneDNN: no"
std::string FormatTorchRuntime(const TorchRuntimeInfo& info);

}  // namespace uniter

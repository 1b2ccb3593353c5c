// Error checking and a scoped device buffer for the .cu files (CUDA only).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>

#include "common/error.h"

namespace uniter::extractor::ops::cuda {

inline void Check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw Error(std::string(what) + ": " + cudaGetErrorString(e), "cuda");
}

// Owns one device allocation. Not copyable.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t count) : count_(count) {
    if (count_) Check(cudaMalloc(&ptr_, count_ * sizeof(T)), "cudaMalloc");
  }
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return ptr_; }
  void Upload(const T* host) { Check(cudaMemcpy(ptr_, host, count_ * sizeof(T), cudaMemcpyHostToDevice), "upload"); }
  void Download(T* host) const {
    Check(cudaMemcpy(host, ptr_, count_ * sizeof(T), cudaMemcpyDeviceToHost), "download");
  }

 private:
  T* ptr_ = nullptr;
  size_t count_;
};

}  // namespace uniter::extractor::ops::cuda

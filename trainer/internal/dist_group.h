// The c10d process group of a multi-process run: a TCPStore (hosted by rank 0
// or torchrun's agent) and Gloo for CPU tensors or NCCL for CUDA ones. The
// c10d headers stay in dist_group's .cc; callers see tensors and strings.
// Every method is a collective: all ranks call it, in the same order.
#pragma once

#include <ATen/core/Tensor.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "trainer/dist.h"

namespace uniter::trainer {

class DistGroup {
 public:
  // nullptr for world_size 1. Else joins the store and forms the group;
  // `cuda` picks NCCL (device local_rank) over Gloo. `timeout` bounds every
  // store wait and collective, so a rank that died or hangs ends the others
  // with an error instead of a hang (a closed connection ends them at once).
  // Throws UsageError when this build lacks the backend, Error when the
  // rendezvous fails.
  static std::unique_ptr<DistGroup> Create(const DistEnv& env, bool cuda, std::chrono::seconds timeout);
  ~DistGroup();

  int rank() const;
  int world_size() const;

  // Sums (mean: then divides by world_size) the gradients of `params` over
  // the ranks, in place, a bucket of about `bucket_bytes` at a time (each
  // bucket one flattened tensor per dtype and device). Parameters without a
  // gradient are skipped: every rank must have the same ones.
  void AllReduceGrads(const std::vector<at::Tensor>& params, bool mean, int64_t bucket_bytes = 4 << 20);
  // Element-wise sums of `values` over the ranks (float64, so the order of the
  // ranks barely matters).
  std::vector<double> AllReduceSum(const std::vector<double>& values);
  // Rank 0's values of `tensors`, in place on every rank.
  void Broadcast(const std::vector<at::Tensor>& tensors);
  // Rank 0 gets every rank's `mine` (index = rank); other ranks get {}.
  // Each rank's part crosses the store in chunks of at most `chunk_bytes`
  // (0: GatherChunkBytes()), the next one sent only once rank 0 has taken
  // the last, so the store never holds more than a chunk per rank (ITM
  // score rows at COCO scale are ~500 MB).
  std::vector<std::string> GatherToRoot(const std::string& mine, int64_t chunk_bytes = 0);
  // The same without holding the parts: rank 0's `sink(rank, offset, bytes)`
  // takes each piece of every rank's part as it arrives (its own first,
  // whole), and it gets each part's size (index = rank); others get {}.
  using GatherSink = std::function<void(int rank, uint64_t offset, std::string_view bytes)>;
  std::vector<uint64_t> GatherToRootInto(const std::string& mine, const GatherSink& sink, int64_t chunk_bytes = 0);
  // UNITER_GATHER_CHUNK_BYTES (for tests) or 64 MiB; UsageError when malformed.
  static int64_t GatherChunkBytes();
  void Barrier();
  // The start every loop shares: every rank must have found the same
  // output_dir state (`resume_step`: the step it resumes at, -1 for a fresh
  // run; a node-local folder would differ), then all take rank 0's `tensors`
  // (UNITER's broadcast_tensors(params, 0)), and the barrier holds rank 0
  // from writing into output_dir before every rank has checked it.
  void StartTogether(const std::string& output_dir, int64_t resume_step, const std::vector<at::Tensor>& tensors);

 private:
  struct Impl;
  explicit DistGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace uniter::trainer

// A prefetching loader: reads LMDB, decodes and collates the batches of an
// epoch on TBB threads while the training step drains them, in the given
// batch order whatever the thread count (DESIGN.md: a TBB pipeline feeding a
// bounded queue).
#pragma once

#include <tbb/task_arena.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "trainer/data/datasets.h"
#include "trainer/internal/batch.h"

namespace uniter::trainer::data {

struct LoaderOptions {
  // The caller's arena to run in; when null, an arena of `num_threads` threads
  // (0: TBB's default concurrency) is created for the loader alone.
  tbb::task_arena* arena = nullptr;
  int num_threads = 0;
  // Collated batches waiting for the step (the queue bound); as many more may be in flight. Default 4.
  size_t prefetch = 4;
  // Recycle img_feat buffers (the largest tensors) once the step drops a batch,
  // instead of faulting fresh pages in for every batch. Default: true.
  bool recycle_buffers = true;
  // The pool to recycle through; pass one pool to every epoch's loader to keep
  // its buffers across epochs. Null: the loader makes its own.
  std::shared_ptr<class FeatBufferPool> buffers;
};

// A thread-safe pool of float buffers handed out as tensor storage; a buffer
// returns when its tensor's storage is freed (the storage holds the pool).
// Keeps at most `keep` idle buffers.
std::shared_ptr<FeatBufferPool> MakeFeatBufferPool(size_t keep = 10);

// One epoch (or any list of batches). Next() is for one consumer thread.
// Destroying the loader early cancels the remaining work.
class PrefetchLoader {
 public:
  // `batches`: example indices per batch (TokenBucketSampler::Batches).
  PrefetchLoader(std::shared_ptr<const TaskDataset> dataset, std::vector<std::vector<int64_t>> batches,
                 const LoaderOptions& options = {});
  ~PrefetchLoader();

  PrefetchLoader(const PrefetchLoader&) = delete;
  PrefetchLoader& operator=(const PrefetchLoader&) = delete;

  // The next batch in order; nullopt after the last. Blocks while it is being
  // made. Rethrows the first error a worker hit (e.g. a missing image).
  std::optional<Batch> Next();
  size_t size() const { return batches_.size(); }

 private:
  void Produce();

  std::shared_ptr<const TaskDataset> dataset_;
  std::vector<std::vector<int64_t>> batches_;
  LoaderOptions options_;
  std::unique_ptr<tbb::task_arena> own_arena_;
  std::shared_ptr<FeatBufferPool> pool_;

  std::mutex mu_;
  std::condition_variable ready_;  // a batch was queued, or the producer ended
  std::condition_variable space_;  // the consumer took one, or stop
  std::deque<Batch> queue_;
  bool producer_done_ = false;
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread producer_;
};

}  // namespace uniter::trainer::data

#include "trainer/data/internal/loader.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_pipeline.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <new>

#include "trainer/data/internal/collate.h"

namespace uniter::trainer::data {

// Float buffers handed out as tensor storage and taken back by the storage's
// deleter (possibly after the loader is gone: the deleter holds the pool).
class FeatBufferPool : public std::enable_shared_from_this<FeatBufferPool> {
 public:
  explicit FeatBufferPool(size_t keep) : keep_(keep) {}
  ~FeatBufferPool() {
    for (auto& [cap, p] : free_) std::free(p);
  }

  at::Tensor Make(at::IntArrayRef sizes) {
    size_t n = 1;
    for (int64_t s : sizes) n *= static_cast<size_t>(s);
    const size_t bytes = std::max<size_t>(n * sizeof(float), 64);
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.lower_bound(bytes);
      if (it != free_.end() && it->first <= 2 * bytes) {
        p = it->second;
        free_.erase(it);
      }
    }
    size_t cap = bytes;
    if (p) {
      cap = capacity_of(p);
    } else {
      p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
      if (!p) throw std::bad_alloc();
      std::lock_guard<std::mutex> lock(mu_);
      caps_[p] = cap = (bytes + 63) / 64 * 64;
    }
    auto self = shared_from_this();
    return at::from_blob(p, sizes, [self](void* q) { self->Return(q); }, at::TensorOptions().dtype(at::kFloat));
  }

 private:
  size_t capacity_of(void* p) {
    std::lock_guard<std::mutex> lock(mu_);
    return caps_.at(p);
  }
  void Return(void* p) {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.size() >= keep_) {
      caps_.erase(p);
      std::free(p);
      return;
    }
    free_.emplace(caps_.at(p), p);
  }

  size_t keep_;
  std::mutex mu_;
  std::multimap<size_t, void*> free_;
  std::map<void*, size_t> caps_;
};

std::shared_ptr<FeatBufferPool> MakeFeatBufferPool(size_t keep) { return std::make_shared<FeatBufferPool>(keep); }

PrefetchLoader::PrefetchLoader(std::shared_ptr<const TaskDataset> dataset, std::vector<std::vector<int64_t>> batches,
                               const LoaderOptions& options)
    : dataset_(std::move(dataset)), batches_(std::move(batches)), options_(options) {
  if (options_.prefetch == 0) options_.prefetch = 1;
  if (!options_.arena) {
    own_arena_ = options_.num_threads > 0 ? std::make_unique<tbb::task_arena>(options_.num_threads)
                                          : std::make_unique<tbb::task_arena>();
    options_.arena = own_arena_.get();
  }
  if (options_.recycle_buffers)
    pool_ = options_.buffers ? options_.buffers : MakeFeatBufferPool(2 * options_.prefetch + 2);
  producer_ = std::thread([this] { Produce(); });
}

PrefetchLoader::~PrefetchLoader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  space_.notify_all();
  if (producer_.joinable()) producer_.join();
}

void PrefetchLoader::Produce() {
  try {
    options_.arena->execute([&] {
      size_t next = 0;
      tbb::parallel_pipeline(
          options_.prefetch,
          tbb::make_filter<void, size_t>(tbb::filter_mode::serial_in_order,
                                         [&](tbb::flow_control& fc) -> size_t {
                                           bool stop;
                                           {
                                             std::lock_guard<std::mutex> lock(mu_);
                                             stop = stop_;
                                           }
                                           if (stop || next == batches_.size()) {
                                             fc.stop();
                                             return 0;
                                           }
                                           return next++;
                                         }) &
              tbb::make_filter<size_t, std::shared_ptr<Batch>>(
                  tbb::filter_mode::parallel,
                  [&](size_t b) {
                    const auto& indices = batches_[b];
                    std::vector<Example> examples(indices.size());
                    tbb::parallel_for(tbb::blocked_range<size_t>(0, indices.size()), [&](const auto& r) {
                      for (size_t i = r.begin(); i < r.end(); ++i) examples[i] = dataset_->Get(indices[i]);
                    });
                    FeatAllocator alloc;
                    if (pool_) alloc = [this](at::IntArrayRef sizes) { return pool_->Make(sizes); };
                    return std::make_shared<Batch>(
                        Collate(dataset_->options(), dataset_->num_answers(), examples, alloc));
                  }) &
              tbb::make_filter<std::shared_ptr<Batch>, void>(
                  tbb::filter_mode::serial_in_order, [&](std::shared_ptr<Batch> batch) {
                    std::unique_lock<std::mutex> lock(mu_);
                    space_.wait(lock, [&] { return stop_ || queue_.size() < options_.prefetch; });
                    if (stop_) return;
                    queue_.push_back(std::move(*batch));
                    ready_.notify_one();
                  }));
    });
  } catch (...) {
    std::lock_guard<std::mutex> lock(mu_);
    error_ = std::current_exception();
  }
  std::lock_guard<std::mutex> lock(mu_);
  producer_done_ = true;
  ready_.notify_all();
}

std::optional<Batch> PrefetchLoader::Next() {
  std::unique_lock<std::mutex> lock(mu_);
  ready_.wait(lock, [&] { return !queue_.empty() || producer_done_; });
  if (!queue_.empty()) {
    Batch b = std::move(queue_.front());
    queue_.pop_front();
    space_.notify_one();
    return b;
  }
  if (error_) std::rethrow_exception(error_);
  return std::nullopt;
}

}  // namespace uniter::trainer::data

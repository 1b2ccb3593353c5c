#include "trainer/data/internal/loader.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_pipeline.h>

#include "trainer/data/internal/collate.h"

namespace uniter::trainer::data {

PrefetchLoader::PrefetchLoader(std::shared_ptr<const TaskDataset> dataset, std::vector<std::vector<int64_t>> batches,
                               const LoaderOptions& options)
    : dataset_(std::move(dataset)), batches_(std::move(batches)), options_(options) {
  if (options_.prefetch == 0) options_.prefetch = 1;
  if (!options_.arena) {
    own_arena_ = options_.num_threads > 0 ? std::make_unique<tbb::task_arena>(options_.num_threads)
                                          : std::make_unique<tbb::task_arena>();
    options_.arena = own_arena_.get();
  }
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
                    return std::make_shared<Batch>(
                        Collate(dataset_->options(), dataset_->num_answers(), examples));
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

// torchrun/srun's env:// variables, batch sharding, and the c10d group
// (TCPStore + ProcessGroupGloo / ProcessGroupNCCL) behind DistGroup.
#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>

#ifdef UNITER_HAVE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef UNITER_HAVE_C10D_NCCL
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL
#endif
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string_view>

#include "common/error.h"
#include "trainer/dist.h"
#include "trainer/internal/dist_group.h"

namespace uniter::trainer {
namespace {

// LibTorch 2 moved the collectives from ProcessGroup to Backend, which both
// ProcessGroupGloo and ProcessGroupNCCL derive from there.
#if TORCH_VERSION_MAJOR >= 2
using GroupBase = c10d::Backend;
constexpr bool kSpeaksAgentStore = true;
#else
using GroupBase = c10d::ProcessGroup;
constexpr bool kSpeaksAgentStore = false;
#endif

int IntVar(const std::function<const char*(const char*)>& getenv, const char* name, int fallback) {
  const char* v = getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  errno = 0;
  const long n = std::strtol(v, &end, 10);
  if (errno != 0 || *end != '\0' || n < 0 || n > (1 << 30))
    throw UsageError(std::string("environment variable ") + name + "='" + v + "' is not a non-negative integer");
  return static_cast<int>(n);
}

// The first line of a c10 error (its what() appends a C++ backtrace).
std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace

DistEnv ReadDistEnv(const std::function<const char*(const char*)>& getenv) {
  DistEnv e;
  const bool torchrun = getenv("WORLD_SIZE") != nullptr;
  const bool slurm = !torchrun && getenv("SLURM_NTASKS") != nullptr && getenv("SLURM_PROCID") != nullptr;
  if (!torchrun && !slurm) return e;
  if (torchrun) {
    e.world_size = IntVar(getenv, "WORLD_SIZE", 1);
    e.rank = IntVar(getenv, "RANK", 0);
    e.local_rank = IntVar(getenv, "LOCAL_RANK", 0);
    e.launcher = getenv("TORCHELASTIC_RUN_ID") != nullptr ? "torchrun" : "env";
  } else {
    e.world_size = IntVar(getenv, "SLURM_NTASKS", 1);
    e.rank = IntVar(getenv, "SLURM_PROCID", 0);
    e.local_rank = IntVar(getenv, "SLURM_LOCALID", 0);
    e.launcher = "slurm";
  }
  const char* world_var = torchrun ? "WORLD_SIZE" : "SLURM_NTASKS";
  if (e.world_size < 1) throw UsageError(std::string("environment variable ") + world_var + " must be at least 1");
  if (e.rank >= e.world_size)
    throw UsageError("rank " + std::to_string(e.rank) + " is not below " + world_var + "=" +
                     std::to_string(e.world_size));
  if (e.world_size == 1) return e;
  const char* addr = getenv("MASTER_ADDR");
  e.master_addr = addr != nullptr && *addr != '\0' ? addr : "127.0.0.1";
  e.master_port = IntVar(getenv, "MASTER_PORT", 0);
  if (e.master_port <= 0 || e.master_port > 65535)
    throw UsageError("WORLD_SIZE=" + std::to_string(e.world_size) +
                     " needs MASTER_PORT (1..65535): the port of rank 0's c10d store");
  const char* agent = getenv("TORCHELASTIC_USE_AGENT_STORE");
  e.agent_store = agent != nullptr && std::string(agent) == "True";
  e.store_port = e.agent_store && !kSpeaksAgentStore ? e.master_port + 1 : e.master_port;
  e.store_port = IntVar(getenv, "UNITER_STORE_PORT", e.store_port);
  if (e.store_port <= 0 || e.store_port > 65535) throw UsageError("UNITER_STORE_PORT must be in 1..65535");
  return e;
}

DistEnv ReadDistEnv() {
  return ReadDistEnv([](const char* name) -> const char* { return std::getenv(name); });
}

namespace {

// Idempotent: an error that already names this rank (the trainer's, passed
// on by the pipeline) keeps one "rank r of W".
std::string RankWhere(const DistEnv& env, const std::string& where) {
  const std::string rank = "rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size);
  if (where == rank || where.starts_with(rank + ": ")) return where;
  return rank + (where.empty() ? "" : ": " + where);
}

}  // namespace

void RethrowNamingRank(const DistEnv& env) {
  try {
    throw;
  } catch (const UsageError& e) {
    throw UsageError(e.message(), RankWhere(env, e.where()));
  } catch (const FormatError& e) {
    throw FormatError(e.message(), RankWhere(env, e.where()));
  } catch (const IoError& e) {
    throw IoError(e.message(), RankWhere(env, e.where()));
  } catch (const Error& e) {
    throw Error(e.message(), RankWhere(env, e.where()));
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(FirstLine(e.what()), RankWhere(env, ""));
  }
}

bool DistHasGloo() {
#ifdef UNITER_HAVE_C10D_GLOO
  return true;
#else
  return false;
#endif
}

bool DistHasNccl() {
#ifdef UNITER_HAVE_C10D_NCCL
  return true;
#else
  return false;
#endif
}

std::vector<std::vector<int64_t>> ShardBatches(std::vector<std::vector<int64_t>> batches, int rank, int world_size,
                                               bool even) {
  if (world_size <= 1) return batches;
  const size_t n = even ? batches.size() / world_size * world_size : batches.size();
  std::vector<std::vector<int64_t>> mine;
  for (size_t i = rank; i < n; i += world_size) mine.push_back(std::move(batches[i]));
  return mine;
}

struct DistGroup::Impl {
  int rank = 0, world = 1;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<GroupBase> group;
  int64_t gathers = 0;  // names each GatherToRoot's store keys

  // Runs one c10d call; its errors become one line.
  template <typename F>
  auto Guard(const std::string& what, F&& f) -> decltype(f()) {
    try {
      return f();
    } catch (const c10::Error& e) {
      throw Error("c10d " + what + " failed: " + FirstLine(e.what_without_backtrace()));
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error("c10d " + what + " failed: " + FirstLine(e.what()));
    }
  }
  void Run(const char* what, const c10::intrusive_ptr<c10d::Work>& work) {
    Guard(what, [&] { return work->wait(); });
  }
};

DistGroup::DistGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DistGroup::~DistGroup() = default;
int DistGroup::rank() const { return impl_->rank; }
int DistGroup::world_size() const { return impl_->world; }

std::unique_ptr<DistGroup> DistGroup::Create(const DistEnv& env, bool cuda, std::chrono::seconds timeout) {
  if (env.world_size <= 1) return nullptr;
  if (cuda && !DistHasNccl())
    throw UsageError("multi-process training on CUDA needs NCCL, which this build lacks (no c10d NCCL headers)");
  if (!cuda && !DistHasGloo())
    throw UsageError("multi-process training on the CPU needs Gloo, which this build lacks (its LibTorch ships no "
                     "gloo headers; use the CPU build against Debian's libtorch-dev + libgloo-dev)");
  auto impl = std::make_unique<Impl>();
  impl->rank = env.rank;
  impl->world = env.world_size;
  const bool host = env.rank == 0 && !(env.agent_store && env.store_port == env.master_port);
  impl->Guard("store", [&] {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(env.store_port);
    so.isServer = host;
    so.numWorkers = env.world_size;
    so.waitWorkers = true;  // clients count themselves in; the host waits for all
    so.timeout = timeout;
    impl->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    return 0;
  });
  impl->Guard("process group", [&] {
#ifdef UNITER_HAVE_C10D_NCCL
    if (cuda) {
      c10::cuda::set_device(static_cast<c10::DeviceIndex>(env.local_rank));
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      impl->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl->store, env.rank, env.world_size, opts);
      return 0;
    }
#endif
#ifdef UNITER_HAVE_C10D_GLOO
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    opts->devices.push_back(ifname != nullptr && *ifname != '\0'
                                ? c10d::ProcessGroupGloo::createDeviceForInterface(ifname)
                                : c10d::ProcessGroupGloo::createDefaultDevice());
    opts->threads = 2;
    impl->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, env.rank, env.world_size, opts);
#endif
    return 0;
  });
  return std::unique_ptr<DistGroup>(new DistGroup(std::move(impl)));
}

void DistGroup::AllReduceGrads(const std::vector<at::Tensor>& params, bool mean, int64_t bucket_bytes) {
  // Buckets in parameter order, one dtype and device each.
  struct Bucket {
    std::vector<at::Tensor> grads;
    at::Tensor flat;
    c10::intrusive_ptr<c10d::Work> work;
  };
  std::vector<Bucket> buckets;
  std::map<std::pair<int, std::string>, size_t> open;  // (dtype, device) → its filling bucket
  std::vector<int64_t> bytes;
  for (const auto& p : params) {
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    const auto key = std::make_pair(static_cast<int>(g.scalar_type()), g.device().str());
    auto it = open.find(key);
    if (it == open.end() || bytes[it->second] >= bucket_bytes) {
      buckets.emplace_back();
      bytes.push_back(0);
      it = open.insert_or_assign(key, buckets.size() - 1).first;
    }
    buckets[it->second].grads.push_back(g);
    bytes[it->second] += g.numel() * static_cast<int64_t>(g.element_size());
  }
  // Gloo and NCCL run the buckets in order on their own threads/streams; all
  // are queued before the first wait.
  for (auto& b : buckets) {
    std::vector<at::Tensor> views;
    for (const auto& g : b.grads) views.push_back(g.reshape({-1}));
    b.flat = at::cat(views);
    std::vector<at::Tensor> one = {b.flat};
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
    b.work = impl_->Guard("allreduce", [&] { return impl_->group->allreduce(one, opts); });
  }
  for (auto& b : buckets) {
    impl_->Run("allreduce", b.work);
    if (mean) b.flat.div_(impl_->world);
    int64_t offset = 0;
    for (auto& g : b.grads) {
      g.copy_(b.flat.narrow(0, offset, g.numel()).view_as(g));
      offset += g.numel();
    }
  }
}

std::vector<double> DistGroup::AllReduceSum(const std::vector<double>& values) {
  if (values.empty()) return {};
  at::Tensor t = at::tensor(values, at::kDouble);
  std::vector<at::Tensor> one = {t};
  impl_->Run("allreduce", impl_->Guard("allreduce", [&] { return impl_->group->allreduce(one); }));
  const double* p = t.data_ptr<double>();
  return std::vector<double>(p, p + values.size());
}

void DistGroup::Broadcast(const std::vector<at::Tensor>& tensors) {
  for (const auto& t : tensors) {
    std::vector<at::Tensor> one = {t};
    impl_->Run("broadcast", impl_->Guard("broadcast", [&] { return impl_->group->broadcast(one); }));
  }
}

// Through the store, not a collective: results files are a few MB at most and
// of any length per rank.
int64_t DistGroup::GatherChunkBytes() {
  const char* v = std::getenv("UNITER_GATHER_CHUNK_BYTES");
  if (v == nullptr || *v == '\0') return int64_t{64} << 20;
  char* end = nullptr;
  errno = 0;
  const long long n = std::strtoll(v, &end, 10);
  if (errno != 0 || *end != '\0' || n <= 0)
    throw UsageError(std::string("UNITER_GATHER_CHUNK_BYTES must be a positive byte count, not '") + v + "'");
  return n;
}

// Keys under uniter/gather/<n>/<rank>/: "size" ("<bytes> <chunk bytes>",
// the sender's chunking, so the ranks need not agree on it), chunk "<k>",
// and "ack<k>", rank 0's word that it took chunk k and the next may come.
std::vector<uint64_t> DistGroup::GatherToRootInto(const std::string& mine, const GatherSink& sink,
                                                  int64_t chunk_bytes) {
  const std::string prefix = "uniter/gather/" + std::to_string(impl_->gathers++) + "/";
  auto& st = *impl_->store;
  auto bytes_of = [](std::string_view s) { return std::vector<uint8_t>(s.begin(), s.end()); };
  if (impl_->rank != 0) {
    const size_t chunk = static_cast<size_t>(chunk_bytes > 0 ? chunk_bytes : GatherChunkBytes());
    const std::string mykeys = prefix + std::to_string(impl_->rank) + "/";
    impl_->Guard("store set", [&] {
      st.set(mykeys + "size", bytes_of(std::to_string(mine.size()) + " " + std::to_string(chunk)));
      for (size_t k = 0; k * chunk < mine.size(); ++k) {
        if (k > 0) {  // rank 0 took chunk k - 1
          st.get(mykeys + "ack" + std::to_string(k - 1));
          st.deleteKey(mykeys + "ack" + std::to_string(k - 1));
        }
        st.set(mykeys + std::to_string(k), bytes_of(std::string_view(mine).substr(k * chunk, chunk)));
      }
      return 0;
    });
    return {};
  }
  std::vector<uint64_t> sizes = {mine.size()};
  sink(0, 0, mine);
  for (int r = 1; r < impl_->world; ++r) {
    const std::string keys = prefix + std::to_string(r) + "/";
    impl_->Guard("store get of rank " + std::to_string(r) + "'s part", [&] {
      const std::vector<uint8_t> head = st.get(keys + "size");
      st.deleteKey(keys + "size");
      unsigned long long size = 0, chunk = 0;
      if (std::sscanf(std::string(head.begin(), head.end()).c_str(), "%llu %llu", &size, &chunk) != 2 || chunk == 0)
        throw Error("rank " + std::to_string(r) + " sent a malformed gather header");
      uint64_t got = 0;
      for (size_t k = 0; k * chunk < size; ++k) {
        const std::string key = keys + std::to_string(k);
        const std::vector<uint8_t> b = st.get(key);
        st.deleteKey(key);
        sink(r, got, std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
        got += b.size();
        if ((k + 1) * chunk < size) st.set(keys + "ack" + std::to_string(k), bytes_of("1"));
      }
      if (got != size)
        throw Error("rank " + std::to_string(r) + " sent " + std::to_string(got) + " of " + std::to_string(size) +
                    " gathered bytes");
      sizes.push_back(got);
      return 0;
    });
  }
  return sizes;
}

std::vector<std::string> DistGroup::GatherToRoot(const std::string& mine, int64_t chunk_bytes) {
  std::vector<std::string> all(static_cast<size_t>(impl_->world));
  const auto sizes = GatherToRootInto(
      mine, [&](int r, uint64_t, std::string_view b) { all[static_cast<size_t>(r)].append(b); }, chunk_bytes);
  if (sizes.empty()) all.clear();
  return all;
}

void DistGroup::Barrier() {
  impl_->Run("barrier", impl_->Guard("barrier", [&] { return impl_->group->barrier(); }));
}

void DistGroup::StartTogether(const std::string& output_dir, int64_t resume_step,
                              const std::vector<at::Tensor>& tensors) {
  const double mine = static_cast<double>(resume_step) + 1;
  if (AllReduceSum({mine})[0] != mine * world_size())
    throw UsageError("the ranks disagree on whether " + output_dir +
                     " holds a run to resume (output_dir must be one folder every rank sees)");
  Broadcast(tensors);
  Barrier();
}

struct DistStore::Impl {
  c10::intrusive_ptr<c10d::TCPStore> store;
  std::string where;  // host:port, for errors

  template <typename F>
  auto Guard(const std::string& what, F&& f) -> decltype(f()) {
    try {
      return f();
    } catch (const c10::Error& e) {
      throw Error("c10d store " + what + " failed: " + FirstLine(e.what_without_backtrace()), where);
    } catch (const std::exception& e) {
      throw Error("c10d store " + what + " failed: " + FirstLine(e.what()), where);
    }
  }
};

DistStore::DistStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DistStore::~DistStore() = default;

std::unique_ptr<DistStore> DistStore::Connect(const DistEnv& env, int port, std::chrono::seconds timeout) {
  if (port <= 0 || port > 65535) throw UsageError("store port " + std::to_string(port) + " is not in 1..65535");
  auto impl = std::make_unique<Impl>();
  impl->where = env.master_addr + ":" + std::to_string(port);
  impl->Guard(env.rank == 0 ? "listen" : "connect", [&] {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(port);
    so.isServer = env.rank == 0;
    so.numWorkers = env.world_size;
    so.waitWorkers = false;  // a rank reads the keys it needs when it gets there
    so.timeout = timeout;
    impl->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    return 0;
  });
  return std::unique_ptr<DistStore>(new DistStore(std::move(impl)));
}

void DistStore::Set(const std::string& key, const std::string& value) {
  impl_->Guard("set " + key, [&] {
    impl_->store->set(key, std::vector<uint8_t>(value.begin(), value.end()));
    return 0;
  });
}

std::string DistStore::Get(const std::string& key) {
  const auto bytes = impl_->Guard("get " + key, [&] { return impl_->store->get(key); });
  return std::string(bytes.begin(), bytes.end());
}

bool DistStore::WaitFor(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) {
  try {
    impl_->store->wait(keys, timeout);
    return true;
  } catch (const std::exception&) {  // the timeout, or the host gone: either way not all set
    return false;
  }
}

}  // namespace uniter::trainer

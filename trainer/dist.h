// Multi-process training: where this process stands in a run launched by
// torchrun (`torchrun --nproc-per-node=N --no-python uniter train ...`) or
// srun, read from the env:// variables they set, and how an epoch's batches
// are shared out between the processes. LibTorch-free; the c10d process
// group itself is trainer/internal/dist_group.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace uniter::trainer {

// One process's place in the run. world_size 1 (no variables set) is a
// single-process run: no process group, nothing else changes.
struct DistEnv {
  int rank = 0;         // RANK (SLURM_PROCID)
  int world_size = 1;   // WORLD_SIZE (SLURM_NTASKS)
  int local_rank = 0;   // LOCAL_RANK (SLURM_LOCALID): the CUDA device index
  std::string master_addr;  // MASTER_ADDR: where the c10d TCPStore listens
  int master_port = 0;      // MASTER_PORT
  // TORCHELASTIC_USE_AGENT_STORE=True: torchrun's agent already hosts a
  // TCPStore at master_port (torch >= 2 rendezvous), see store_port.
  bool agent_store = false;
  // The port of the store the processes share: master_port, unless the agent
  // holds it and our LibTorch cannot speak its store protocol (Debian's 1.13
  // predates the 2.x handshake); then rank 0 hosts our own at master_port + 1
  // (UNITER_STORE_PORT overrides).
  int store_port = 0;
  std::string launcher;  // "torchrun", "env", "slurm", or "" for one process
};

// `getenv` reads one variable (nullptr when unset). torchrun's variables
// (RANK, WORLD_SIZE, ...) win over SLURM's; MASTER_ADDR defaults to
// 127.0.0.1 and MASTER_PORT is required when world_size > 1. A malformed or
// inconsistent value throws UsageError naming the variable.
DistEnv ReadDistEnv(const std::function<const char*(const char*)>& getenv);
DistEnv ReadDistEnv();  // from the process environment

// Inside a catch block: throws the exception being handled again with the
// rank in its location ("rank 1 of 2: <where>"), the same uniter::Error
// subclass; any other std::exception becomes an Error with its first line.
[[noreturn]] void RethrowNamingRank(const DistEnv& env);

// Whether this build can form a process group: Gloo (CPU tensors) and NCCL
// (CUDA tensors, only in a CUDA LibTorch build with NCCL's headers).
bool DistHasGloo();
bool DistHasNccl();

// Rank `rank` of `world_size`'s share of an epoch's global batch list, which
// every rank draws identically from the one seed: batches rank, rank + W,
// rank + 2W, ... With `even` (training) only the first floor(B / W) * W
// batches are shared out, so every rank runs as many micro-batches (each
// gradient all-reduce needs every rank); evaluation keeps them all.
std::vector<std::vector<int64_t>> ShardBatches(std::vector<std::vector<int64_t>> batches, int rank, int world_size,
                                               bool even);

// A key-value store every rank of a run shares (c10d's TCPStore, hosted by
// rank 0 at `port`): what a job's steps besides the trainer's own process
// group (the pipeline's stages, pipeline/run.h) wait on. Blocking reads, no
// polling; a host that went away ends a reader's wait with an Error at once.
class DistStore {
 public:
  // Rank 0 listens at env.master_addr:port, the others connect (retrying
  // until `timeout`). Throws Error naming the address when it cannot.
  static std::unique_ptr<DistStore> Connect(const DistEnv& env, int port, std::chrono::seconds timeout);
  ~DistStore();

  void Set(const std::string& key, const std::string& value);
  // Waits until `key` is set (at most the timeout given to Connect), then returns its value.
  std::string Get(const std::string& key);
  // Waits at most `timeout` for every key in `keys`; false when one is still unset.
  bool WaitFor(const std::vector<std::string>& keys, std::chrono::milliseconds timeout);

 private:
  struct Impl;
  explicit DistStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace uniter::trainer

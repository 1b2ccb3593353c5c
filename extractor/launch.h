// Which part of the work this process does and on which devices, from the
// command line or from the launcher's environment: torchrun (RANK,
// WORLD_SIZE, LOCAL_RANK) or SLURM (SLURM_PROCID, SLURM_NTASKS,
// SLURM_LOCALID). Thread safe (reads the environment only).
#pragma once

#include <string>
#include <vector>

namespace uniter::extractor {

struct Shard {
  int index = 0, count = 1;
  std::string source;  // "--shard", "torchrun", "SLURM" or "" (one process)
};

// `spec`: "k/N" (0 <= k < N), or "" / "auto": torchrun's RANK/WORLD_SIZE when
// set, else SLURM's SLURM_PROCID/SLURM_NTASKS, else 0/1. UsageError on a
// malformed spec or variable.
Shard ResolveShard(const std::string& spec);

// `spec`: a comma list of "cpu", "cuda:N" or "cuda" (= cuda:LOCAL_RANK, else
// cuda:SLURM_LOCALID, else cuda:0). Returns one canonical device per entry;
// UsageError on a malformed entry or a repeated CUDA device.
std::vector<std::string> ResolveDevices(const std::string& spec);

// UsageError naming `device` when this build or machine cannot run it
// (LibTorch without CUDA, or no such GPU).
void CheckDevice(const std::string& device);

}  // namespace uniter::extractor

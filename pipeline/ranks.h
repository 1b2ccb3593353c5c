// The pipeline under torchrun / SLURM (trainer/dist.h's env:// variables):
// rank 0 runs the graph, every serial stage (convert, pack, merge, infer,
// eval, report) and tells the other ranks through a c10d store
// (trainer::DistStore, hosted by rank 0) what to do; they block on its keys:
//
//   plan/extract-<split>   "run": extract your shard, "skip", or "error: <line>"
//   shard/extract-<split>/<r>  rank r's shard: its result JSON, or "error: <line>"
//   plan/train             "run": join the trainer's c10d group, "skip", "error: <line>"
//   exit/<r>               rank r is leaving (rank 0 keeps the store up until then)
//
// A failing rank sets "error: ..." in every key the others wait on from it,
// so every rank ends with one line; a rank that dies outright closes its
// connection (rank 0: the store itself), which ends the others' waits.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "trainer/dist.h"

namespace uniter::pipeline {

class Ranks {
 public:
  // nullptr for one process. The store listens at MASTER_ADDR and the
  // trainer's store port + 1 (UNITER_PIPELINE_STORE_PORT overrides).
  static std::unique_ptr<Ranks> Connect(const trainer::DistEnv& env, std::chrono::seconds timeout);

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  const trainer::DistEnv& env() const { return env_; }

  // Rank 0: the plan for `stage`; the first call wins (later ones are no-ops).
  void Plan(const std::string& stage, const std::string& what);
  // Rank 0: every stage of `stages` without a plan gets `what`.
  void PlanRest(const std::vector<std::string>& stages, const std::string& what);
  // Other ranks: the plan for `stage` ("run" or "skip"); Error when rank 0 failed.
  std::string AwaitPlan(const std::string& stage);

  // Other ranks: this rank's shard of `stage` is done, or failed (for every stage in `stages`).
  void ShardDone(const std::string& stage, const nlohmann::json& result);
  void ShardFailed(const std::vector<std::string>& stages, const std::string& line);
  // Rank 0: rank `r`'s result for `stage`; Error when it failed.
  nlohmann::json AwaitShard(const std::string& stage, int r);

  void Exit();  // other ranks, last thing (never throws)
  void AwaitExits(std::chrono::seconds timeout);  // rank 0, last thing (bounded, never throws)

 private:
  Ranks(const trainer::DistEnv& env, std::unique_ptr<trainer::DistStore> store)
      : env_(env), store_(std::move(store)) {}

  trainer::DistEnv env_;
  std::unique_ptr<trainer::DistStore> store_;
  std::mutex mu_;
  std::set<std::string> planned_;
};

}  // namespace uniter::pipeline

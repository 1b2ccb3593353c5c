#include "pipeline/ranks.h"

#include <cstdlib>

#include "common/error.h"

namespace uniter::pipeline {
namespace {

const std::string kPrefix = "uniter/pipeline/";
const std::string kError = "error: ";

}  // namespace

std::unique_ptr<Ranks> Ranks::Connect(const trainer::DistEnv& env, std::chrono::seconds timeout) {
  if (env.world_size <= 1) return nullptr;
  int port = env.store_port + 1;  // the trainer's own store holds store_port
  if (const char* p = std::getenv("UNITER_PIPELINE_STORE_PORT"); p != nullptr && *p != '\0') {
    char* end = nullptr;
    port = static_cast<int>(std::strtol(p, &end, 10));
    if (*end != '\0') throw UsageError("UNITER_PIPELINE_STORE_PORT must be a port number, not '" + std::string(p) + "'");
  }
  return std::unique_ptr<Ranks>(new Ranks(env, trainer::DistStore::Connect(env, port, timeout)));
}

void Ranks::Plan(const std::string& stage, const std::string& what) {
  std::lock_guard lock(mu_);
  if (!planned_.insert(stage).second) return;
  store_->Set(kPrefix + "plan/" + stage, what);
}

void Ranks::PlanRest(const std::vector<std::string>& stages, const std::string& what) {
  for (const auto& s : stages) {
    try {
      Plan(s, what);
    } catch (const Error&) {  // the store itself failed: the others' waits end anyway
    }
  }
}

std::string Ranks::AwaitPlan(const std::string& stage) {
  const std::string v = store_->Get(kPrefix + "plan/" + stage);
  if (v.starts_with(kError)) throw Error("rank 0 stopped: " + v.substr(kError.size()), stage);
  return v;
}

void Ranks::ShardDone(const std::string& stage, const nlohmann::json& result) {
  store_->Set(kPrefix + "shard/" + stage + "/" + std::to_string(env_.rank), result.dump());
}

void Ranks::ShardFailed(const std::vector<std::string>& stages, const std::string& line) {
  for (const auto& s : stages) {
    try {
      store_->Set(kPrefix + "shard/" + s + "/" + std::to_string(env_.rank), kError + line);
    } catch (const Error&) {
    }
  }
}

nlohmann::json Ranks::AwaitShard(const std::string& stage, int r) {
  const std::string v = store_->Get(kPrefix + "shard/" + stage + "/" + std::to_string(r));
  if (v.starts_with(kError)) throw Error("rank " + std::to_string(r) + " failed: " + v.substr(kError.size()));
  return nlohmann::json::parse(v);
}

void Ranks::Exit() {
  try {
    store_->Set(kPrefix + "exit/" + std::to_string(env_.rank), "1");
  } catch (const Error&) {
  }
}

void Ranks::AwaitExits(std::chrono::seconds timeout) {
  std::vector<std::string> keys;
  for (int r = 1; r < env_.world_size; ++r) keys.push_back(kPrefix + "exit/" + std::to_string(r));
  store_->WaitFor(keys, timeout);
}

}  // namespace uniter::pipeline

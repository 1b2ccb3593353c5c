// A UNITER task model (encoder + NLVR2 / VQA / VE head) behind a LibTorch-free
// interface: build it from UNITER's model JSON, load UNITER checkpoints of
// either torch format, save UNITER-compatible ones. The training loop reaches
// the LibTorch module through module() (trainer/internal/task_model.h).
// Not thread-safe: one thread drives a model at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "trainer/checkpoint.h"
#include "trainer/config.h"

namespace uniter::trainer {

enum class TaskKind { kNlvr2, kVqa, kVe, kItm, kRe, kVcr };

// The dtype of a saved checkpoint's floating tensors.
enum class CheckpointDtype { kFloat32, kFloat16 };

struct TaskOptions {
  TaskKind task = TaskKind::kNlvr2;
  // NLVR2 head as train_nlvr2.py's `model` option: "paired", "triplet" or
  // "paired-attn". Default: "paired-attn".
  std::string nlvr2_model = "paired-attn";
  // VQA answer vocabulary size (len(ans2label)). Default: 3129. VE uses 3.
  int64_t num_answers = 3129;
  // ITM ranking loss margin (train_itm.py's `margin`). Default: 0.2.
  double margin = 0.2;
  // RE head as train_re.py's `mlp`: 1 (Linear) or 2 (Linear-GELU-LN-Linear).
  int re_mlp = 1;
  // VCR: train_vcr.py's `checkpoint_from`, how Load reads a checkpoint:
  // "pretrain" (from_pretrained, then the type/word expansion applied to its
  // rows) or "vcr_pretrain" (keys matching the expanded model, as inf_vcr.py).
  std::string checkpoint_from = "pretrain";
};

class TaskModelImpl;

class Model {
 public:
  // UNITER's init (from_pretrained on an empty state dict; NLVR2 then
  // init_type_embedding), drawn from a generator seeded with `seed`.
  Model(const UniterConfig& config, const TaskOptions& options, uint64_t seed);
  ~Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;

  // Loads a UNITER/BERT checkpoint with from_pretrained's rules (NLVR2: a
  // 2-row type embedding is expanded to [t0, t1, t1]). Throws FormatError on a
  // malformed file or a shape mismatch, IoError if unreadable.
  LoadReport Load(const std::string& path);
  // Writes ckpt/model_step_N.pt-style zip state dicts (UNITER's keys), from
  // CPU copies, floating tensors as `dtype` (fp16: what apex O2 runs saved).
  void Save(const std::string& path, CheckpointDtype dtype = CheckpointDtype::kFloat32) const;

  // UNITER's state-dict keys, in registration order.
  std::vector<std::string> ParameterNames() const;
  int64_t NumParameters() const;
  const UniterConfig& config() const { return config_; }
  const TaskOptions& options() const { return options_; }

  TaskModelImpl& module();

 private:
  UniterConfig config_;
  TaskOptions options_;
  std::shared_ptr<TaskModelImpl> module_;
};

}  // namespace uniter::trainer

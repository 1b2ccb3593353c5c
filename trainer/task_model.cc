#include "trainer/internal/task_model.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/functional.h>

#include "common/error.h"
#include "trainer/internal/checkpoint.h"

namespace uniter::trainer {
namespace {

// UniterForVisualQuestionAnswering; VE is the same class with 3 answers.
class VqaModelImpl : public TaskModelImpl {
 public:
  VqaModelImpl(const UniterConfig& c, int64_t num_answers) : TaskModelImpl(c) {
    const int64_t h = c.hidden_size;
    vqa_output_ = register_module(
        "vqa_output", torch::nn::Sequential(torch::nn::Linear(h, 2 * h),
                                            torch::nn::Functional([](const at::Tensor& x) { return Gelu(x); }),
                                            MakeLayerNorm(2 * h), torch::nn::Linear(2 * h, num_answers)));
    InitUniterWeights(*this, c.initializer_range);
  }

  at::Tensor Scores(const Batch& b) override {
    // UNITER's VQA forward passes neither txt_type_ids nor img_type_ids.
    UniterModelImpl::Inputs in{b.input_ids, b.position_ids, b.img_feat, b.img_pos_feat,
                               b.attn_masks, b.gather_index, {}, {}, {}, FirstRows(b.attn_masks)};
    return vqa_output_->forward(uniter->pooler(uniter(in)));
  }
  at::Tensor Loss(const at::Tensor& scores, const Batch& b) const override {
    return at::binary_cross_entropy_with_logits(scores, b.targets, {}, {}, at::Reduction::None);
  }
  at::Tensor TrainLoss(const at::Tensor& loss, const Batch& b) const override {
    return loss.mean() * static_cast<double>(b.targets.size(1));  // instance-level BCE
  }

 private:
  torch::nn::Sequential vqa_output_{nullptr};
};

}  // namespace

TaskModelImpl::TaskModelImpl(const UniterConfig& config) {
  uniter = register_module("uniter", UniterModel(config, config.img_dim));
}

std::shared_ptr<TaskModelImpl> MakeVqaModel(const UniterConfig& config, int64_t num_answers) {
  if (num_answers <= 0) throw UsageError("the VQA head needs at least one answer");
  return std::make_shared<VqaModelImpl>(config, num_answers);
}

TaskModel MakeTaskModel(const UniterConfig& config, const TaskOptions& options) {
  switch (options.task) {
    case TaskKind::kNlvr2:
      return TaskModel(MakeNlvr2Model(config, options.nlvr2_model));
    case TaskKind::kVqa:
      return TaskModel(MakeVqaModel(config, options.num_answers));
    case TaskKind::kVe:
      return TaskModel(MakeVqaModel(config, 3));
    case TaskKind::kItm:
      return TaskModel(MakeItmModel(config, options.margin));
    case TaskKind::kRe:
      return TaskModel(MakeReModel(config, options.re_mlp));
    case TaskKind::kVcr:
      return TaskModel(MakeVcrModel(config));
  }
  throw UsageError("unknown task");
}

at::Tensor InferScores(TaskModelImpl& model, const Batch& batch, const InferPlacement& place) {
  at::Tensor scores;
  {
    AutocastGuard autocast(place.amp, place.device);
    scores = model.Scores(ToDevice(batch, place.device, false));
  }
  return ToCpuFloat(scores);
}

Model::Model(const UniterConfig& config, const TaskOptions& options, uint64_t seed)
    : config_(config), options_(options) {
  // LibTorch's init functions draw from the default generator: seed it, as
  // UNITER's set_random_seed does before building the model.
  at::manual_seed(seed);
  module_ = MakeTaskModel(config, options).ptr();
}

Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

LoadReport Model::Load(const std::string& path) {
  if (options_.task == TaskKind::kVcr)
    return LoadVcrCheckpoint(*module_, path, options_.checkpoint_from == "pretrain");
  LoadOptions load;
  load.expand_type_rows = module_->ExpandedTypeRows();
  return LoadCheckpoint(*module_, path, load);
}

void Model::Save(const std::string& path, CheckpointDtype dtype) const {
  SaveCheckpoint(*module_, path, dtype == CheckpointDtype::kFloat16 ? at::kHalf : at::kFloat);
}

std::vector<std::string> Model::ParameterNames() const {
  std::vector<std::string> out;
  for (const auto& p : module_->named_parameters()) out.push_back(p.key());
  return out;
}

int64_t Model::NumParameters() const {
  int64_t n = 0;
  for (const auto& p : module_->parameters()) n += p.numel();
  return n;
}

TaskModelImpl& Model::module() { return *module_; }

}  // namespace uniter::trainer

// UNITER's optimizer parameter groups (optim/misc.py:build_optimizer and the
// lr_mul variants in train_vqa.py / train_vcr.py / train_re.py).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace uniter::trainer::optim {

struct ParamGroupOptions {
  double weight_decay = 0.01;  // the configs' weight_decay
  // Names containing any of these form the head groups (VQA: {"vqa_output"},
  // VCR: {"vcr_output"}, RE: {"re_output"}); empty (NLVR2, VE): no head groups.
  std::vector<std::string> head_keys;
  double lr_mul = 1.0;  // head groups' learning-rate multiplier (configs' lr_mul)
};

struct ParamGroup {
  std::string name;              // "head_decay", "head_no_decay", "decay", "no_decay"
  std::vector<size_t> members;   // indices into the names given, in their order
  double weight_decay = 0.0;
  double lr_mul = 1.0;
};

// UNITER's no-decay rule: the name contains 'bias', 'LayerNorm.bias' or 'LayerNorm.weight'.
bool IsNoDecay(std::string_view name);

// The groups in UNITER's order: [head decay, head no-decay,] decay, no-decay.
// Groups are kept even when empty so their positions match UNITER's (its loop
// sets lr by group index).
std::vector<ParamGroup> BuildParamGroups(const std::vector<std::string>& names, const ParamGroupOptions& options);

}  // namespace uniter::trainer::optim

#include "trainer/optim/param_groups.h"

namespace uniter::trainer::optim {
namespace {

bool Contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

}  // namespace

bool IsNoDecay(std::string_view name) {
  return Contains(name, "bias") || Contains(name, "LayerNorm.bias") || Contains(name, "LayerNorm.weight");
}

std::vector<ParamGroup> BuildParamGroups(const std::vector<std::string>& names, const ParamGroupOptions& options) {
  const bool heads = !options.head_keys.empty();
  std::vector<ParamGroup> groups;
  if (heads) {
    groups.push_back({"head_decay", {}, options.weight_decay, options.lr_mul});
    groups.push_back({"head_no_decay", {}, 0.0, options.lr_mul});
  }
  groups.push_back({"decay", {}, options.weight_decay, 1.0});
  groups.push_back({"no_decay", {}, 0.0, 1.0});
  const size_t base = heads ? 2 : 0;
  for (size_t i = 0; i < names.size(); ++i) {
    bool head = false;
    for (const std::string& k : options.head_keys) head = head || Contains(names[i], k);
    groups[(head ? 0 : base) + (IsNoDecay(names[i]) ? 1 : 0)].members.push_back(i);
  }
  return groups;
}

}  // namespace uniter::trainer::optim

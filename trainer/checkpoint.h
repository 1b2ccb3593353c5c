// What loading a UNITER checkpoint did (UniterPreTrainedModel.from_pretrained's
// rules, see trainer/internal/checkpoint.h). LibTorch-free.
#pragma once

#include <string>
#include <vector>

namespace uniter::trainer {

struct LoadReport {
  std::string format;                    // "zip" (torch >= 1.6) or "legacy" (torch < 1.6)
  std::vector<std::string> missing;      // model parameters the file lacks (kept as initialised)
  std::vector<std::string> unexpected;   // file keys the model has no parameter for (ignored)
  std::vector<std::string> renamed;      // "old -> new" for gamma/beta and bert -> uniter renames
  bool type_embedding_expanded = false;  // NLVR2: [t0, t1] -> [t0, t1, t1]
  int converted_fp16 = 0;                // tensors stored in another dtype, converted
};

}  // namespace uniter::trainer

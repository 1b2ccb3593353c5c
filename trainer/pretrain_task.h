// The tasks of UNITER's pretraining (pretrain.py), LibTorch-free: shared by
// the pretraining datasets and the pretraining model.
#pragma once

#include <string>

namespace uniter::trainer {

enum class PretrainTask { kMlm, kMrfr, kMrc, kMrcKl, kItm };

// pretrain.py's task names as configs spell them: "mlm", "mrfr", "mrc",
// "mrckl"/"mrc-kl" (an mrc name holding "kl"), "itm"; UsageError otherwise.
PretrainTask ParsePretrainTask(const std::string& name);
const char* PretrainTaskName(PretrainTask task);

}  // namespace uniter::trainer

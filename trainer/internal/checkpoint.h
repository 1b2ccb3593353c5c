// UNITER checkpoints: torch.save'd state dicts in both of torch's formats.
//  - zip (torch >= 1.6): `archive/data.pkl` + one record per storage.
//  - legacy (torch < 1.6, every released UNITER file): back-to-back pickles
//    (magic number, protocol 1001, sys_info, the state dict, the storage key
//    list), then per storage an int64 element count and its raw LE bytes.
// Both pickles are read with the safe pickle reader, allowing only the globals
// a state dict needs (OrderedDict, torch._utils._rebuild_tensor_v2 /
// _rebuild_parameter, torch.*Storage); nothing is ever executed.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "trainer/checkpoint.h"

namespace uniter::trainer {

// Key → tensor in file order, dtype as stored, contiguous, on the CPU.
using StateDict = std::vector<std::pair<std::string, at::Tensor>>;

// Reads either format. Throws FormatError naming `path` and the key or byte
// offset on anything malformed or truncated; IoError if it cannot be read.
StateDict ReadStateDict(const std::string& path);

struct LoadOptions {
  // Rows of uniter.embeddings.token_type_embeddings to expand a smaller table
  // to ([t0, t1, t1], NLVR2's init_type_embedding); 0 = never. Default: 0.
  int64_t expand_type_rows = 0;
};

// Copies `state` into `model`'s parameters as UNITER's from_pretrained does:
// keys with gamma/beta are renamed weight/bias; a file whose keys start with
// `bert.` (pytorch-pretrained-bert's layout) gets scripts/convert_ckpt.py's
// rule (bert → uniter in every key); tensors are converted to the parameter's
// dtype. Missing and unexpected keys are listed in the report; a shape
// mismatch throws FormatError "<where>: key '<k>': ...".
LoadReport LoadStateDict(torch::nn::Module& model, StateDict state, const std::string& where,
                         const LoadOptions& options = {});

// ReadStateDict + LoadStateDict.
LoadReport LoadCheckpoint(torch::nn::Module& model, const std::string& path, const LoadOptions& options = {});

// Writes model.state_dict() (parameters and buffers, UNITER's keys) as a
// zip-format file that Python's torch.load reads, as UNITER's ModelSaver
// does, from CPU copies; floating tensors as `float_dtype` (kHalf for an fp16
// run: UNITER's apex O2 model was fp16), others as they are. Written to a
// temporary file and renamed, so `path` is never half-written.
void SaveCheckpoint(const torch::nn::Module& model, const std::string& path,
                    at::ScalarType float_dtype = at::kFloat);

// The writer behind SaveCheckpoint for any state dict (tensors contiguous, on
// the CPU, in a dtype torch has a storage for): a zip torch.load reads.
// Written through uniter::WriteFileAtomic (common/atomic_file.h): after a
// crash `path` is either absent/old or complete.
void WriteStateDict(const StateDict& state, const std::string& path);

}  // namespace uniter::trainer

// The post-processor stage: BERT's single-sentence template [CLS] ids [SEP].
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace uniter::tokenizer {

class BertPostProcessor {
 public:
  // Throws UsageError when the vocabulary has no [CLS] or [SEP].
  explicit BertPostProcessor(const SpecialIds& special);
  // [CLS] + ids + [SEP].
  std::vector<int32_t> Apply(const std::vector<int32_t>& ids) const;
  std::vector<std::string> Apply(const std::vector<std::string>& tokens, const Tokenizer& tokenizer) const;

 private:
  int32_t cls_, sep_;
};

}  // namespace uniter::tokenizer

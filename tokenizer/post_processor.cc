#include "tokenizer/post_processor.h"

#include "common/error.h"

namespace uniter::tokenizer {

BertPostProcessor::BertPostProcessor(const SpecialIds& special) : cls_(special.cls), sep_(special.sep) {
  if (cls_ < 0 || sep_ < 0) throw UsageError("the vocabulary has no [CLS]/[SEP] tokens to add");
}

std::vector<int32_t> BertPostProcessor::Apply(const std::vector<int32_t>& ids) const {
  std::vector<int32_t> out;
  out.reserve(ids.size() + 2);
  out.push_back(cls_);
  out.insert(out.end(), ids.begin(), ids.end());
  out.push_back(sep_);
  return out;
}

std::vector<std::string> BertPostProcessor::Apply(const std::vector<std::string>& tokens,
                                                  const Tokenizer& tokenizer) const {
  std::vector<std::string> out;
  out.reserve(tokens.size() + 2);
  out.push_back(tokenizer.IdToToken(cls_));
  out.insert(out.end(), tokens.begin(), tokens.end());
  out.push_back(tokenizer.IdToToken(sep_));
  return out;
}

}  // namespace uniter::tokenizer

// Typed accessors for the txt_db example fields UNITER's datasets read
// (see shared/UNITER_FORMATS.md). Each throws FormatError naming the field
// when it is missing or has the wrong type.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "featdb/value.h"

namespace uniter::featdb {

// `input_ids`: list of ints.
std::vector<int32_t> InputIds(const Value& example);
// `img_fname`: one name, or a list of names (NLVR2 pairs, VCR gt/det); always returned as a list.
std::vector<std::string> ImgFnames(const Value& example);
// `target` as an int (NLVR2, RE, VCR qa_target...): `field` picks the key.
int64_t IntField(const Value& example, const std::string& field);
// VQA/VE `target`: {labels: [int], scores: [float]}.
struct SoftTarget {
  std::vector<int32_t> labels;
  std::vector<float> scores;
};
SoftTarget SoftTargetField(const Value& example, const std::string& field = "target");
// A list of int lists (VCR `input_ids_as`, `input_ids_rs`).
std::vector<std::vector<int32_t>> IntListList(const Value& example, const std::string& field);

}  // namespace uniter::featdb

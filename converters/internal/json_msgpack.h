// Writes a txt_db record's msgpack straight from the parsed JSON, without a
// featdb::Value tree: UNITER's prepro keeps every original field of a record
// and adds a few, and building (then encoding) a Value per record was most of
// a converter's cost. The bytes come from featdb's one msgpack writer, so they
// are what featdb::EncodeMsgpack(ToValue(json)) writes.
#pragma once

#include <simdjson.h>

#include <initializer_list>
#include <string>
#include <string_view>

#include "featdb/msgpack_writer.h"

namespace uniter::converters {

// Writes JSON value `e` as ToValue + EncodeMsgpack would. Returns false when
// an object in it repeats a key (Python keeps the last value at the first
// key's position, which this single pass does not): the bytes are then wrong
// and the caller takes the featdb::Value path.
bool WriteJsonMsgpack(simdjson::dom::element e, featdb::MsgpackWriter& w);

// Starts a map holding every field of `o` followed by `added.size()` fields the
// caller writes next (key, then value, in the order given), and writes the
// original fields, in one pass. Returns false when the direct path would not
// match Python's dict semantics: `o` (at any depth) repeats a key, or already
// holds one of `added` (Python replaces it in place). The caller then discards
// what was written and takes the featdb::Value path (ObjectToMap + Set).
bool BeginRecordWithOriginal(simdjson::dom::object o, std::initializer_list<std::string_view> added,
                             featdb::MsgpackWriter& w);

// Per-thread scratch buffer for a record's msgpack (cleared; capacity kept).
std::string& MsgpackScratch();

}  // namespace uniter::converters

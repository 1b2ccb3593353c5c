// Helpers of the featdb tests: running the Python reference (uniter_ref.py)
// and the canonical JSON form it prints values in.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>
#include <string>

#include "featdb/value.h"
#include "tests/test_util.h"

namespace uniter::featdb::testing {

inline std::string RefScript() { return ::uniter::testing::SourceRoot() + "/tests/featdb/uniter_ref.py"; }

// Runs `uniter_ref.py <args>`; returns stdout. Fails the test on a non-zero exit.
inline std::string RunRef(const std::string& args) {
  const std::string cmd =
      ::uniter::testing::Quote(::uniter::testing::Python()) + " " + ::uniter::testing::Quote(RefScript()) + " " + args;
  auto r = ::uniter::testing::Run(cmd);
  EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.out;
  return r.out;
}

// Runs a shell command (gtest's Test::Run hides uniter::testing::Run inside TEST bodies).
inline ::uniter::testing::CommandResult Sh(const std::string& cmd) { return ::uniter::testing::Run(cmd); }

// Runs the uniter binary; returns {exit code, stdout+stderr}.
inline ::uniter::testing::CommandResult RunUniter(const std::string& args) {
  return ::uniter::testing::Run(::uniter::testing::Quote(::uniter::testing::UniterBinary()) + " " + args + " 2>&1");
}

#define FEATDB_REQUIRE_REFERENCE()                \
  do {                                            \
    UNITER_REQUIRE_PYTHON_MODULE("lmdb");         \
    UNITER_REQUIRE_PYTHON_MODULE("msgpack");      \
    UNITER_REQUIRE_PYTHON_MODULE("msgpack_numpy"); \
    UNITER_REQUIRE_PYTHON_MODULE("lz4.frame");    \
    UNITER_REQUIRE_PYTHON_MODULE("numpy");        \
  } while (0)

// The canonical form uniter_ref.py's canon() prints.
inline nlohmann::json Canon(const Value& v) {
  static const char* kHex = "0123456789abcdef";
  auto hex = [](std::string_view b) {
    std::string h;
    for (unsigned char c : b) {
      h.push_back(kHex[c >> 4]);
      h.push_back(kHex[c & 15]);
    }
    return h;
  };
  switch (v.type()) {
    case Value::Type::kNil: return nullptr;
    case Value::Type::kBool: return v.as_bool();
    case Value::Type::kInt:
      return {{"int", v.is_unsigned() ? std::to_string(v.as_uint()) : std::to_string(v.as_int())}};
    case Value::Type::kFloat: {
      const double d = v.as_double();
      std::string b(8, '\0');
      std::memcpy(b.data(), &d, 8);
      return {{"f64", hex(b)}};
    }
    case Value::Type::kStr: return {{"str", v.as_str()}};
    case Value::Type::kBin: return {{"bin", hex(v.as_bin())}};
    case Value::Type::kArray: {
      nlohmann::json a = nlohmann::json::array();
      for (const Value& x : v.as_array()) a.push_back(Canon(x));
      return a;
    }
    case Value::Type::kMap: {
      nlohmann::json items = nlohmann::json::array();
      for (const auto& [k, x] : v.as_map()) items.push_back(nlohmann::json::array({k, Canon(x)}));
      return {{"map", items}};
    }
  }
  return nullptr;
}

}  // namespace uniter::featdb::testing

#include "common/pickle_reader.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

#include "common/error.h"
#include "tests/test_util.h"

namespace uniter {
namespace {

namespace fs = std::filesystem;

// The canonical form make_pickles.py writes for Python's own pickle.loads.
nlohmann::json Canon(const PyValue& v) {
  using K = PyValue::Kind;
  switch (v.kind) {
    case K::kNone: return nullptr;
    case K::kBool: return v.b;
    case K::kInt: return v.i;
    case K::kFloat: return {{"f", v.f}};
    case K::kStr: return v.s;
    case K::kBytes: {
      static const char* hex = "0123456789abcdef";
      std::string h;
      for (unsigned char c : v.s) h += std::string{hex[c >> 4], hex[c & 15]};
      return {{"b", h}};
    }
    case K::kList: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& c : v.items) a.push_back(Canon(c));
      return a;
    }
    case K::kTuple: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& c : v.items) a.push_back(Canon(c));
      return {{"t", a}};
    }
    case K::kDict: {
      nlohmann::json a = nlohmann::json::array();
      for (size_t i = 0; i < v.keys.size(); ++i) a.push_back({Canon(v.keys[i]), Canon(v.values[i])});
      return {{"d", a}};
    }
    case K::kGlobal: case K::kObject: case K::kPersistentId:
      return {{"object", v.s}};  // only with an allowlist (none here)
  }
  return nullptr;
}

// Fixtures written by Debian's python3 (the pickler itself is the reference).
std::string Fixtures() {
  static std::string dir;
  if (!dir.empty()) return dir;
  dir = testing::TempDir("pickles");
  const std::string py = fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : testing::Python();
  const auto r = testing::Run(testing::Quote(py) + " " +
                              testing::Quote(testing::SourceRoot() + "/tests/common/make_pickles.py") + " " +
                              testing::Quote(dir));
  EXPECT_EQ(r.exit_code, 0) << "make_pickles.py failed";
  return dir;
}

std::string Read(const std::string& name) { return testing::ReadFile(Fixtures() + "/" + name + ".pkl"); }

TEST(PickleReader, ReadsWhatPythonWroteAtEveryProtocol) {
  int cases = 0;
  for (const auto& entry : fs::directory_iterator(Fixtures())) {
    if (entry.path().extension() != ".json") continue;
    const std::string name = entry.path().stem().string();
    SCOPED_TRACE(name);
    const nlohmann::json want = nlohmann::json::parse(testing::ReadFile(entry.path().string()));
    const PyValue got = ParsePickle(Read(name), name);
    EXPECT_EQ(Canon(got), want);
    ++cases;
  }
  // refs_p0..p5, bytes_p3, py2_proto0, py2_proto2, py2_latin1.
  EXPECT_EQ(cases, 10);
}

TEST(PickleReader, RefusesEverythingButPlainData) {
  const std::vector<std::pair<std::string, std::string>> hostile = {
      {"bad_global_reduce", "GLOBAL"},     {"bad_stack_global", "STACK_GLOBAL"},
      {"bad_object", "GLOBAL"},            {"bad_reduce_only", "REDUCE"},
      {"bad_deep_nesting", "nesting"},     {"bad_deep_marks", "MARK"},
      {"bad_cycle", "cycle"},              {"bad_laughs", "expands"},
      {"bad_truncated", "truncated"},      {"bad_huge_length", "truncated"},
      {"bad_unknown_opcode", "unknown pickle opcode 0xff"}, {"bad_empty", "truncated"},
  };
  for (const auto& [name, why] : hostile) {
    SCOPED_TRACE(name);
    try {
      ParsePickle(Read(name), name + ".pkl");
      ADD_FAILURE() << "accepted";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
      EXPECT_EQ(e.where(), name + ".pkl");
    }
  }
}

TEST(PickleReader, EveryTruncationIsAClearError) {
  for (const char* name : {"refs_p0", "refs_p2", "py2_proto2", "refs_p4"}) {
    const std::string data = Read(name);
    ASSERT_GT(data.size(), 10u);
    for (size_t n = 0; n < data.size(); ++n) {
      EXPECT_THROW(ParsePickle(std::string_view(data).substr(0, n), name), FormatError) << name << " cut at " << n;
    }
  }
}

TEST(PickleReader, LimitsAreConfigurable) {
  const std::string nested = "\x80\x02]]]]aaa.";  // [[[[]]]]
  EXPECT_NO_THROW(ParsePickle(nested, "n"));
  PickleLimits tight;
  tight.max_depth = 2;
  EXPECT_THROW(ParsePickle(nested, "n", tight), FormatError);
}

// torch checkpoints: an allowlist lets a pickle name a few globals, which are
// recorded as data, never called; everything else stays refused.
TEST(PickleReader, AllowlistNamesOnlyTheListedGlobalsAndCallsNothing) {
  PickleLimits torch_like;
  torch_like.allowed_globals = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2"};
  torch_like.allow_persistent_ids = true;
  using namespace std::string_literals;
  const PyValue od = ParsePickle("\x80\x02" "ccollections\nOrderedDict\nq\x00)R(X\x01\x00\x00\x00" "aK\x01u}b."s, "od",
                                 torch_like);
  ASSERT_EQ(od.kind, PyValue::Kind::kDict);  // BUILD's attribute state on it is dropped
  EXPECT_EQ(od.Find("a")->i, 1);
  const PyValue obj = ParsePickle("\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\nK\x07K\x01Q\x86R."s, "o", torch_like);
  ASSERT_EQ(obj.kind, PyValue::Kind::kObject);
  EXPECT_EQ(obj.s, "torch._utils._rebuild_tensor_v2");
  ASSERT_EQ(obj.items.size(), 2u);
  EXPECT_EQ(obj.items[1].kind, PyValue::Kind::kPersistentId);
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"\x80\x02" "cos\nsystem\nX\x02\x00\x00\x00lsq\x85R."s, "refused global 'os.system'"},
      {"\x80\x02X\x02\x00\x00\x00osX\x06\x00\x00\x00system\x93."s, "refused global 'os.system'"},
      {"\x80\x02}}b."s, "BUILD on a value"},
      {"\x80\x02K\x01)R."s, "REDUCE of a int"},
      {"\x80\x02" "ccollections\nOrderedDict\nK\x01R."s, "not a tuple"},
      {"\x80\x02K\x01P1\n."s, "PERSID"},
  };
  for (const auto& [data, why] : refused) {
    try {
      ParsePickle(data, "x", torch_like);
      ADD_FAILURE() << "accepted " << why;
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(ParsePickle("\x80\x02K\x01Q."s, "x"), FormatError);  // no persistent ids by default
  for (const char* name : {"bad_global_reduce", "bad_object"})  // os.system, __main__.Obj
    EXPECT_THROW(ParsePickle(Read(name), name, torch_like), FormatError) << name;
}

TEST(PickleReader, ParsesPicklesBackToBack) {
  const std::string two = std::string("\x80\x02K\x01.\x80\x02K\x02.", 10);
  size_t end = 0;
  EXPECT_EQ(ParsePickleAt(two, 0, "two", {}, &end).i, 1);
  EXPECT_EQ(end, 5u);
  EXPECT_EQ(ParsePickleAt(two, end, "two", {}, &end).i, 2);
  EXPECT_EQ(end, 10u);
  try {
    ParsePickleAt(two.substr(0, 9), 5, "two", {}, &end);
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("offset 7"), std::string::npos) << e.what();  // offsets into the whole stream
  }
}

TEST(PickleReader, FileErrorsNameTheFile) {
  try {
    ReadPickleFile("/nonexistent/refs(unc).p");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/refs(unc).p"), std::string::npos);
  }
}

}  // namespace
}  // namespace uniter

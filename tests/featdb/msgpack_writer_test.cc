// featdb's one msgpack writer at every size boundary, checked two independent
// ways: msgpack-cxx decodes each item to the value written, and Python's
// msgpack re-encodes the whole (use_bin_type=True) to the very same bytes.
#include "featdb/msgpack_writer.h"

#include <gtest/gtest.h>

#include <msgpack.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "tests/featdb/featdb_test_util.h"

namespace uniter::featdb {
namespace {

using ::uniter::testing::Quote;

// One item: how to write it, and what msgpack-cxx must decode it to.
struct Case {
  std::string name;
  std::function<void(MsgpackWriter&)> write;
  std::function<void(const msgpack::object&)> check;
};

std::vector<Case> Cases() {
  std::vector<Case> cases;
  const uint64_t kU[] = {0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295ull, 4294967296ull,
                         std::numeric_limits<uint64_t>::max()};
  for (uint64_t u : kU) {
    cases.push_back({"uint " + std::to_string(u), [u](MsgpackWriter& w) { w.UInt(u); },
                     [u](const msgpack::object& o) {
                       ASSERT_EQ(o.type, msgpack::type::POSITIVE_INTEGER);
                       EXPECT_EQ(o.via.u64, u);
                     }});
  }
  const int64_t kI[] = {0, 5, 200, 70000, -1, -32, -33, -128, -129, -32768, -32769, -2147483648LL,
                        -2147483649LL, std::numeric_limits<int64_t>::min()};
  for (int64_t i : kI) {
    cases.push_back({"int " + std::to_string(i), [i](MsgpackWriter& w) { w.Int(i); },
                     [i](const msgpack::object& o) {
                       if (i >= 0) {
                         ASSERT_EQ(o.type, msgpack::type::POSITIVE_INTEGER);  // as Python: uint family
                         EXPECT_EQ(o.via.u64, uint64_t(i));
                       } else {
                         ASSERT_EQ(o.type, msgpack::type::NEGATIVE_INTEGER);
                         EXPECT_EQ(o.via.i64, i);
                       }
                     }});
  }
  const double kD[] = {0.0, -0.0, 1.5, -3.25e-310, 1e300, std::numeric_limits<double>::infinity()};
  for (double d : kD) {
    cases.push_back({"double", [d](MsgpackWriter& w) { w.Double(d); },
                     [d](const msgpack::object& o) {
                       ASSERT_EQ(o.type, msgpack::type::FLOAT64);
                       EXPECT_EQ(std::signbit(o.via.f64), std::signbit(d));
                       EXPECT_EQ(o.via.f64, d);
                     }});
  }
  cases.push_back({"nil", [](MsgpackWriter& w) { w.Nil(); },
                   [](const msgpack::object& o) { EXPECT_EQ(o.type, msgpack::type::NIL); }});
  for (bool b : {false, true}) {
    cases.push_back({"bool", [b](MsgpackWriter& w) { w.Bool(b); },
                     [b](const msgpack::object& o) {
                       ASSERT_EQ(o.type, msgpack::type::BOOLEAN);
                       EXPECT_EQ(o.via.boolean, b);
                     }});
  }
  for (size_t n : {0, 1, 31, 32, 255, 256, 65535, 65536}) {
    std::string s;
    for (size_t k = 0; k < n; ++k) s.push_back(char('a' + k % 26));
    cases.push_back({"str " + std::to_string(n), [s](MsgpackWriter& w) { w.Str(s); },
                     [s](const msgpack::object& o) {
                       ASSERT_EQ(o.type, msgpack::type::STR);
                       EXPECT_EQ(std::string(o.via.str.ptr, o.via.str.size), s);
                     }});
    std::string b;
    for (size_t k = 0; k < n; ++k) b.push_back(char(k * 7));
    cases.push_back({"bin " + std::to_string(n), [b](MsgpackWriter& w) { w.Bin(b); },
                     [b](const msgpack::object& o) {
                       ASSERT_EQ(o.type, msgpack::type::BIN);
                       EXPECT_EQ(std::string(o.via.bin.ptr, o.via.bin.size), b);
                     }});
  }
  for (size_t n : {0, 15, 16, 65535, 65536}) {
    cases.push_back({"array " + std::to_string(n),
                     [n](MsgpackWriter& w) {
                       std::vector<int32_t> ids(n);
                       for (size_t k = 0; k < n; ++k) ids[k] = int32_t(k) - 40000;
                       w.IntList(ids);
                     },
                     [n](const msgpack::object& o) {
                       ASSERT_EQ(o.type, msgpack::type::ARRAY);
                       ASSERT_EQ(o.via.array.size, n);
                       for (size_t k = 0; k < n; ++k) ASSERT_EQ(o.via.array.ptr[k].as<int64_t>(), int64_t(k) - 40000);
                     }});
    cases.push_back({"map " + std::to_string(n),
                     [n](MsgpackWriter& w) {
                       w.MapHeader(n);
                       for (size_t k = 0; k < n; ++k) {
                         w.Str("k" + std::to_string(k));
                         w.Int(int64_t(k));
                       }
                     },
                     [n](const msgpack::object& o) {
                       ASSERT_EQ(o.type, msgpack::type::MAP);
                       ASSERT_EQ(o.via.map.size, n);
                       for (size_t k = 0; k < n; ++k) {
                         ASSERT_EQ(o.via.map.ptr[k].key.as<std::string>(), "k" + std::to_string(k));
                         ASSERT_EQ(o.via.map.ptr[k].val.as<int64_t>(), int64_t(k));
                       }
                     }});
  }
  return cases;
}

TEST(MsgpackWriter, MsgpackCxxDecodesEveryBoundaryToTheValueWritten) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    MsgpackWriter w;
    c.write(w);
    const std::string bytes = w.Take();
    std::size_t off = 0;
    const msgpack::object_handle h = msgpack::unpack(bytes.data(), bytes.size(), off);
    EXPECT_EQ(off, bytes.size());  // one item, nothing left over
    c.check(h.get());
  }
}

TEST(MsgpackWriter, AppendsToTheCallersBufferAndKeepsWhatIsThere) {
  std::string buf = "prefix";
  MsgpackWriter w(&buf);
  w.Str("x");
  EXPECT_EQ(buf, std::string("prefix\xa1x"));
}

TEST(MsgpackWriter, BytesAreWhatPythonMsgpackDumpsWrites) {
  FEATDB_REQUIRE_REFERENCE();
  const std::vector<Case> cases = Cases();
  MsgpackWriter w;
  w.ArrayHeader(cases.size());
  for (const Case& c : cases) c.write(w);
  const std::string bytes = w.Take();
  // Python decodes our bytes and re-encodes them with use_bin_type=True: the
  // same bytes come back iff every item is in the encoding msgpack.dumps picks.
  const std::string dir = ::uniter::testing::TempDir("msgpack_writer");
  ::uniter::testing::WriteFile(dir + "/in.bin", bytes);
  const std::string py =
      "import msgpack,sys; b=open(sys.argv[1],'rb').read(); "
      "open(sys.argv[2],'wb').write(msgpack.dumps(msgpack.loads(b, raw=False, strict_map_key=False), "
      "use_bin_type=True))";
  const auto r = featdb::testing::Sh(Quote(::uniter::testing::Python()) + " -c " + Quote(py) + " " +
                                     Quote(dir + "/in.bin") + " " + Quote(dir + "/out.bin"));
  ASSERT_EQ(r.exit_code, 0);
  const std::string back = ::uniter::testing::ReadFile(dir + "/out.bin");
  ASSERT_EQ(back.size(), bytes.size());
  EXPECT_TRUE(back == bytes) << "first difference at byte "
                             << std::mismatch(back.begin(), back.end(), bytes.begin()).first - back.begin();
}

}  // namespace
}  // namespace uniter::featdb

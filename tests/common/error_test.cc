#include "common/error.h"

#include <gtest/gtest.h>

namespace uniter {
namespace {

TEST(Error, MessageNamesWhere) {
  FormatError e("bad label 'maybe'", Where("dev.json", 12));
  EXPECT_STREQ(e.what(), "dev.json:12: bad label 'maybe'");
  EXPECT_EQ(e.message(), "bad label 'maybe'");
  EXPECT_EQ(e.where(), "dev.json:12");
}

TEST(Error, NoWhereMeansJustTheMessage) {
  UsageError e("--vocab is required");
  EXPECT_STREQ(e.what(), "--vocab is required");
}

TEST(Error, ErrnoIsSpelledOut) {
  errno = ENOENT;
  try {
    ThrowErrno("cannot open", "/nonexistent");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_STREQ(e.what(), "/nonexistent: cannot open: No such file or directory");
  }
}

}  // namespace
}  // namespace uniter

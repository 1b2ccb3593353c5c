#!/usr/bin/env python3
"""Dumps, for every code point, what pytorch-pretrained-bert's helpers and
Python 3.11's str methods say about it; the C++ test prints the same table
from its ICU-based properties and compares line by line.

  unicode_dump.py OUT
Line per code point (surrogates skipped): "<hex> <flags> <lower-strip>" where
flags = isspace | _is_whitespace<<1 | _is_control<<2 | _is_punctuation<<3 |
        (category == "Mn")<<4 | _is_chinese_char<<5
and lower-strip = the hex code points of _run_strip_accents(ch.lower()), or
"=" when that is the character itself ("-" when empty). U+03A3 is left out of
the mapping (its lower case depends on context).
"""
import sys
import unicodedata

from pytorch_pretrained_bert.tokenization import (BasicTokenizer, _is_control, _is_punctuation,
                                                  _is_whitespace)


def main():
    bt = BasicTokenizer(do_lower_case=True)
    out = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        flags = (int(ch.isspace()) | int(_is_whitespace(ch)) << 1 | int(_is_control(ch)) << 2 |
                 int(_is_punctuation(ch)) << 3 | int(unicodedata.category(ch) == "Mn") << 4 |
                 int(bt._is_chinese_char(cp)) << 5)
        if cp == 0x3A3:
            m = "="
        else:
            s = bt._run_strip_accents(ch.lower())
            m = "=" if s == ch else ("-" if not s else ",".join("%x" % ord(c) for c in s))
        out.append("%x %d %s\n" % (cp, flags, m))
    with open(sys.argv[1], "w") as f:
        f.writelines(out)


if __name__ == "__main__":
    main()

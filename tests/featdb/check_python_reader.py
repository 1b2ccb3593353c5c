"""Checks python/uniter_featdb against the C++ decoder's output.

  check_python_reader.py DB REF_DIR
REF_DIR/<key>.npz holds the arrays the C++ decoder gave for record <key> of
DB (written by tests/featdb/python_reader_test.cc). Every array must come out
of uniter_featdb with the same name, order, dtype, shape and bytes. Prints
"<records> <arrays>" checked.
"""
import os
import sys

import lmdb
import numpy as np

from uniter_featdb import ImgDb, read_native

db_path, ref_dir = sys.argv[1], sys.argv[2]
env = lmdb.open(db_path, readonly=True, lock=False)
with env.begin() as txn:
    lmdb_keys = [k.decode() for k, _ in txn.cursor() if k != b"__keys__"]
env.close()
records = arrays = 0
with ImgDb(db_path) as db:
    assert db.keys == lmdb_keys, "__keys__ differs from the LMDB's keys"
    for key in db.keys:
        got = db.get(key, verify=True)
        ref = np.load(os.path.join(ref_dir, key + ".npz"))
        assert list(got) == list(ref.files), (key, list(got), ref.files)
        for name in ref.files:
            r, g = ref[name], got[name]
            assert g.dtype == r.dtype and g.shape == r.shape, (key, name, g.dtype, r.dtype, g.shape, r.shape)
            assert g.tobytes() == r.tobytes(), (key, name, "bytes differ")
            arrays += 1
        # only= decodes just the named arrays.
        one = db.get(key, only={"conf"})
        assert list(one) == ["conf"] and one["conf"].tobytes() == ref["conf"].tobytes()
        records += 1
    # A flipped payload byte fails verify.
    value = bytearray(db.txn.get(db.keys[0].encode()))
    value[len(value) // 3] ^= 0x40
    try:
        read_native(bytes(value), verify=True)
        raise SystemExit("a corrupted payload was not detected")
    except Exception as e:  # FormatError, or the codec's own error on a broken frame
        pass
print(records, arrays)

"""UNITER's image reader, timed: DetectFeatLmdb.__getitem__ (data/data.py) on
one img_db LMDB for the keys in a file; prints records/s.

  featdb_python_reader.py <db> <keys.txt> <compressed 0|1> <all_arrays 0|1>

all_arrays 0: __getitem__ (features + norm_bb → float tensors).
all_arrays 1: get_dump (every array, fp16 → fp32).
"""
import io
import sys
import time

import lmdb
import msgpack
import msgpack_numpy
import numpy as np

msgpack_numpy.patch()
try:
    import torch
except ImportError:  # numpy stands in for torch.tensor(...).float()
    torch = None


def main():
    db, keys_file, compress, all_arrays = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4] == "1"
    keys = [k.strip() for k in open(keys_file) if k.strip()]
    env = lmdb.open(db, readonly=True, create=False, readahead=True)
    txn = env.begin(buffers=True)
    nbb = 10**9  # every row (feat_numbb: name2nbb is num_bb, the stored row count)
    sink = 0.0
    t0 = time.perf_counter()
    for fname in keys:
        dump = txn.get(fname.encode('utf-8'))
        if all_arrays:  # get_dump
            if compress:
                with io.BytesIO(dump) as reader:
                    img_dump = np.load(reader, allow_pickle=True)
                    img_dump = {k: arr.astype(np.float32) if arr.dtype == np.float16 else arr for k, arr in img_dump.items()}
            else:
                img_dump = msgpack.loads(dump, raw=False)
                img_dump = {k: arr.astype(np.float32) if arr.dtype == np.float16 else arr for k, arr in img_dump.items()}
            img_dump = {k: arr[:nbb, ...] for k, arr in img_dump.items()}
            sink += float(img_dump['features'][0, 0])
        else:  # __getitem__
            if compress:
                with io.BytesIO(dump) as reader:
                    img_dump = np.load(reader, allow_pickle=True)
                    img_dump = {'features': img_dump['features'], 'norm_bb': img_dump['norm_bb']}
            else:
                img_dump = msgpack.loads(dump, raw=False)
            if torch is not None:
                img_feat = torch.tensor(img_dump['features'][:nbb, :]).float()
                img_bb = torch.tensor(img_dump['norm_bb'][:nbb, :]).float()
            else:
                img_feat = img_dump['features'][:nbb, :].astype(np.float32)
                img_bb = img_dump['norm_bb'][:nbb, :].astype(np.float32)
            sink += float(img_feat[0, 0]) + float(img_bb[0, 0])
    dt = time.perf_counter() - t0
    env.close()
    print(f"{len(keys) / dt:.1f}")


if __name__ == "__main__":
    main()

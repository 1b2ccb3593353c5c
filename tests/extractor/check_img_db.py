"""Reads an img_db written by `uniter extract` the way UNITER's DetectFeatLmdb
does (tests/featdb/uniter_ref.py mirrors data/data.py) and checks BUTD's
invariants. Prints a JSON summary; exits non-zero on a violated invariant.

usage: check_img_db.py IMG_DIR CONF_TH MAX_BB MIN_BB
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "featdb"))
import uniter_ref  # noqa: E402


def main():
    img_dir, conf_th, max_bb, min_bb = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    env, txn, name2nbb = uniter_ref.open_detect_feat(img_dir, conf_th, max_bb, min_bb, 36, False)
    keys = json.loads(bytes(txn.get(b"__keys__")).decode("utf-8"))
    summary = {"keys": keys, "nbb": {}, "feat_dim": None, "problems": []}
    for k in keys:
        d, nbb = uniter_ref.get_dump(txn, name2nbb, 36, k, False)
        feat, bb, conf, soft = d["features"], d["norm_bb"], d["conf"], d["soft_labels"]
        n = feat.shape[0]
        summary["nbb"][k] = int(nbb)
        summary["feat_dim"] = int(feat.shape[1])

        def bad(msg):
            summary["problems"].append(f"{k}: {msg}")

        if not (min_bb <= n <= max_bb):
            bad(f"{n} boxes")
        if feat.dtype != np.float16 or bb.dtype != np.float16:
            bad("not float16")
        if bb.shape != (n, 6) or soft.shape != (n, 1601) or conf.shape != (n,):
            bad(f"shapes {bb.shape} {soft.shape} {conf.shape}")
        b = bb.astype(np.float32)
        if b.min() < 0 or b.max() > 1:
            bad(f"norm_bb outside [0,1]: {b.min()} {b.max()}")
        if not np.allclose(b[:, 4], b[:, 2] - b[:, 0], atol=2e-3) or not np.allclose(b[:, 5], b[:, 3] - b[:, 1], atol=2e-3):
            bad("norm_bb w/h are not x2-x1, y2-y1")
        s = soft.astype(np.float32).sum(axis=1)
        if np.abs(s - 1).max() > 1e-2:
            bad(f"soft labels sum to {s.min()}..{s.max()}")
        c = conf.astype(np.float32)
        if np.any(np.diff(c) > 0):
            bad("conf not descending")
        if not np.all(np.isfinite(feat.astype(np.float32))):
            bad("non-finite features")
    env.close()
    print(json.dumps(summary, sort_keys=True))
    sys.exit(1 if summary["problems"] else 0)


if __name__ == "__main__":
    main()

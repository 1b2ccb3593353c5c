"""Reference results from torchvision 0.14's ops for tests/extractor/ops_test.cc.

usage: torchvision_ref.py DIR
DIR/meta.json names the op and its arguments; inputs are raw little-endian
float32/int64 files in DIR; the result is written to DIR/out.bin.
"""
import json
import os
import sys

import numpy as np
import torch
import torchvision.ops as ops


def load(d, name, dtype, shape):
    return torch.from_numpy(np.fromfile(os.path.join(d, name), dtype=dtype).reshape(shape))


def main():
    d = sys.argv[1]
    meta = json.load(open(os.path.join(d, "meta.json")))
    op = meta["op"]
    if op in ("nms", "batched_nms", "multiclass"):
        n = meta["n"]
        boxes = load(d, "boxes.bin", np.float32, (n, 4))
        if meta.get("plus_one"):
            # Caffe's +1 pixel areas: IoU of (x1, y1, x2+1, y2+1) without the +1.
            boxes = boxes + torch.tensor([0.0, 0.0, 1.0, 1.0])
        thr = meta["threshold"]
        if op == "nms":
            scores = load(d, "scores.bin", np.float32, (n,))
            out = ops.nms(boxes, scores, thr).numpy().astype(np.int64)
        elif op == "batched_nms":
            scores = load(d, "scores.bin", np.float32, (n,))
            idxs = load(d, "idxs.bin", np.int64, (n,))
            out = ops.batched_nms(boxes, scores, idxs, thr).numpy().astype(np.int64)
        else:
            c = meta["c"]
            scores = load(d, "scores.bin", np.float32, (n, c))
            # Every (box, class) pair as its own box, grouped by class.
            rep_boxes = boxes.repeat_interleave(c, dim=0)
            idxs = torch.arange(c).repeat(n)
            keep = ops.batched_nms(rep_boxes, scores.reshape(-1), idxs, thr)
            mask = np.zeros(n * c, dtype=np.uint8)
            mask[keep.numpy()] = 1
            out = mask
    elif op == "roi_pool":
        b, ch, h, w, k = meta["b"], meta["ch"], meta["h"], meta["w"], meta["k"]
        feats = load(d, "features.bin", np.float32, (b, ch, h, w))
        rois = load(d, "rois.bin", np.float32, (k, 5))
        out = ops.roi_pool(feats, rois, (meta["ph"], meta["pw"]), meta["scale"]).numpy().astype(np.float32)
    else:
        raise SystemExit("unknown op " + op)
    out.tofile(os.path.join(d, "out.bin"))


if __name__ == "__main__":
    main()

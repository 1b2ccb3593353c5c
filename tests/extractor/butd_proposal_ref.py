"""BUTD's ProposalLayer.forward (lib/rpn/proposal_layer.py, TEST phase) with
numpy, following its code step by step; NMS is cpu_nms's (+1 areas, suppress
IoU >= thresh) done with torchvision.ops.nms on boxes grown by one pixel.
One deviation: ties in score are broken by the lower anchor index first
(argsort kind='stable' on -score) where BUTD's argsort()[::-1] leaves them
unspecified.

usage: butd_proposal_ref.py DIR   (prob.bin [1,24,H,W], deltas.bin [1,48,H,W],
       im_info.bin [3], meta.json {"h":H,"w":W}) -> rois.bin [K,5] float32
"""
import json
import os
import sys

import numpy as np
import torch
import torchvision.ops as ops


def whctrs(a):
    w = a[2] - a[0] + 1
    h = a[3] - a[1] + 1
    return w, h, a[0] + 0.5 * (w - 1), a[1] + 0.5 * (h - 1)


def mkanchors(ws, hs, x, y):
    ws = ws[:, np.newaxis]
    hs = hs[:, np.newaxis]
    return np.hstack((x - 0.5 * (ws - 1), y - 0.5 * (hs - 1), x + 0.5 * (ws - 1), y + 0.5 * (hs - 1)))


def generate_anchors(base_size=16, ratios=(0.5, 1, 2), scales=(4, 8, 16, 32)):
    base = np.array([1, 1, base_size, base_size]) - 1
    w, h, x, y = whctrs(base)
    ws = np.round(np.sqrt(w * h / np.array(ratios)))
    hs = np.round(ws * np.array(ratios))
    ratio_anchors = mkanchors(ws, hs, x, y)
    out = []
    for i in range(ratio_anchors.shape[0]):
        w, h, x, y = whctrs(ratio_anchors[i])
        out.append(mkanchors(w * np.array(scales), h * np.array(scales), x, y))
    return np.vstack(out)


def main():
    d = sys.argv[1]
    meta = json.load(open(os.path.join(d, "meta.json")))
    H, W = meta["h"], meta["w"]
    prob = np.fromfile(os.path.join(d, "prob.bin"), dtype=np.float32).reshape(1, 24, H, W)
    deltas = np.fromfile(os.path.join(d, "deltas.bin"), dtype=np.float32).reshape(1, 48, H, W)
    im_info = np.fromfile(os.path.join(d, "im_info.bin"), dtype=np.float32)
    anchors0 = generate_anchors()
    A = anchors0.shape[0]
    scores = prob[:, A:, :, :]
    shift_x, shift_y = np.meshgrid(np.arange(0, W) * 16, np.arange(0, H) * 16)
    shifts = np.vstack((shift_x.ravel(), shift_y.ravel(), shift_x.ravel(), shift_y.ravel())).transpose()
    K = shifts.shape[0]
    anchors = (anchors0.reshape((1, A, 4)) + shifts.reshape((1, K, 4)).transpose((1, 0, 2))).reshape((K * A, 4))
    deltas = deltas.transpose((0, 2, 3, 1)).reshape((-1, 4))
    scores = scores.transpose((0, 2, 3, 1)).reshape((-1, 1))
    # bbox_transform_inv
    boxes = anchors.astype(deltas.dtype, copy=False)
    widths = boxes[:, 2] - boxes[:, 0] + 1.0
    heights = boxes[:, 3] - boxes[:, 1] + 1.0
    ctr_x = boxes[:, 0] + 0.5 * widths
    ctr_y = boxes[:, 1] + 0.5 * heights
    pcx = deltas[:, 0] * widths + ctr_x
    pcy = deltas[:, 1] * heights + ctr_y
    pw = np.exp(deltas[:, 2]) * widths
    ph = np.exp(deltas[:, 3]) * heights
    proposals = np.stack([pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw, pcy + 0.5 * ph], axis=1).astype(np.float32)
    # clip_boxes
    proposals[:, 0::2] = np.maximum(np.minimum(proposals[:, 0::2], im_info[1] - 1), 0)
    proposals[:, 1::2] = np.maximum(np.minimum(proposals[:, 1::2], im_info[0] - 1), 0)
    # _filter_boxes
    min_size = 16 * im_info[2]
    ws = proposals[:, 2] - proposals[:, 0] + 1
    hs = proposals[:, 3] - proposals[:, 1] + 1
    keep = np.where((ws >= min_size) & (hs >= min_size))[0]
    proposals, scores = proposals[keep, :], scores[keep]
    order = np.argsort(-scores.ravel(), kind="stable")[:6000]
    proposals, scores = proposals[order, :], scores[order]
    grown = torch.from_numpy(proposals.copy()) + torch.tensor([0.0, 0.0, 1.0, 1.0])
    keep = ops.nms(grown, torch.from_numpy(scores.ravel().copy()), 0.7).numpy()[:300]
    proposals = proposals[keep, :]
    blob = np.hstack((np.zeros((proposals.shape[0], 1), dtype=np.float32), proposals.astype(np.float32)))
    blob.astype(np.float32).tofile(os.path.join(d, "rois.bin"))


if __name__ == "__main__":
    main()

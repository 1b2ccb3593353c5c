#!/usr/bin/env python3
"""BUTD's image preprocessing (lib/fast_rcnn/test.py _get_image_blob), with
cv2 and numpy as BUTD ran it, for the GPU machine where our C++ build has no
OpenCV: cv2.imread (BGR), float32 minus the pixel means, scale so the short
side is 600 unless the long side would pass 1000 (tested on the rounded size),
cv2.resize INTER_LINEAR with fx = fy = scale.

usage: preprocess.py OUT_DIR IMAGE...
writes OUT_DIR/<stem>.bin (float32 HWC, C order) and OUT_DIR/index.tsv lines
"<stem> <height> <width> <scale> <orig_height> <orig_width>" (extractor_device_bench reads them).
"""
import os
import sys

import cv2
import numpy as np

PIXEL_MEANS = np.array([[[102.9801, 115.9465, 122.7717]]])  # cfg.PIXEL_MEANS, float64 as in BUTD
TARGET_SIZE = 600  # cfg.TEST.SCALES
MAX_SIZE = 1000  # cfg.TEST.MAX_SIZE


def blob(im):
    im_orig = im.astype(np.float32, copy=True)
    im_orig -= PIXEL_MEANS  # in place: stays float32
    size_min, size_max = np.min(im_orig.shape[0:2]), np.max(im_orig.shape[0:2])
    scale = float(TARGET_SIZE) / float(size_min)
    if np.round(scale * size_max) > MAX_SIZE:
        scale = float(MAX_SIZE) / float(size_max)
    im = cv2.resize(im_orig, None, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    return im, scale


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "index.tsv"), "w") as index:
        for path in sorted(sys.argv[2:]):
            im = cv2.imread(path)
            if im is None:
                print("skipped (not an image): " + path, file=sys.stderr)
                continue
            b, scale = blob(im)
            stem = os.path.splitext(os.path.basename(path))[0]
            np.ascontiguousarray(b, dtype=np.float32).tofile(os.path.join(out, stem + ".bin"))
            index.write("%s %d %d %.17g %d %d\n" % (stem, b.shape[0], b.shape[1], scale, im.shape[0], im.shape[1]))
    print("preprocessed %d images into %s" % (len(sys.argv) - 2, out))


if __name__ == "__main__":
    main()

"""Linear probe: do the demo's img_db features carry the images' colours?

usage: demo_probe.py DEMO_DIR   (after `uniter pipeline demo --dir DEMO_DIR`)
Fits a ridge classifier on the mean- and max-pooled box features of the training
images (colour = the dominant channel of the centre pixel, where the shape is)
and prints its accuracy on the dev images. Needs numpy, lmdb, msgpack, PIL.
"""
import glob
import sys

import lmdb
import msgpack
import numpy as np
from PIL import Image
root = sys.argv[1]
def load(split):
    db = glob.glob(f'{root}/out/img_db/nlvr2_{split}/feat_*')[0]
    env = lmdb.open(db, readonly=True, lock=False)
    X, Y = [], []
    with env.begin() as t:
        for k, v in t.cursor():
            if k == b'__keys__': continue
            d = msgpack.unpackb(v, raw=False)
            f = d['features']
            arr = np.frombuffer(f[b'data'] if b'data' in f else f['data'], dtype=np.dtype(f.get(b'type', f.get('type')) if isinstance(f, dict) else 'f2'))
            name = k.decode()[6:-4]
            shape = f.get(b'shape', f.get('shape'))
            arr = arr.reshape(shape).astype(np.float32)
            img = np.asarray(Image.open(f'{root}/images/{split}/{name}.png'))
            px = img[img.shape[0]//2, img.shape[1]//2]
            X.append(np.concatenate([arr.mean(0), arr.max(0)])); Y.append(int(np.argmax(px)))
    return np.array(X), np.array(Y)
Xt, Yt = load('train'); Xd, Yd = load('dev')
mu, sd = Xt.mean(0), Xt.std(0) + 1e-6
Xt = (Xt - mu) / sd; Xd = (Xd - mu) / sd
# ridge one-vs-rest
T = np.eye(3)[Yt]
W = np.linalg.solve(Xt.T @ Xt + 10 * np.eye(Xt.shape[1]), Xt.T @ T)
print('colour probe dev acc', (np.argmax(Xd @ W, 1) == Yd).mean(), 'dims', Xt.shape)

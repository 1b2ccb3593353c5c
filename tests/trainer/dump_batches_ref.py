"""Recomputes the losses of `uniter train ... --dump-batches N DIR` with the
PyTorch restatements of UNITER's models (uniter_ref.py, uniter_itm_ref.py,
re_vcr_ref.py), from nothing but the dumped .npz files and the weights the run
started from; checks each file's keys against UNITER's collate functions.

Usage:
  dump_batches_ref.py init TASK MODEL_JSON OUT.pt [ARG]
      a perturbed random state dict of TASK's model (plain dict, torch.save);
      ARG: NLVR2 variant, VQA answer count, RE mlp
  dump_batches_ref.py check TASK MODEL_JSON INIT.pt DIR [ARG]
      prints one JSON line per dumped file: {"file", "keys", "loss", "ref"}
      and exits 1 on a key, dtype or collate mismatch

TASK: nlvr2 | vqa | ve | itm | re | vcr. The model config must have zero
dropout (and the run `dropout` 0): then training mode computes what eval mode
does, which is what this script runs.
"""
import glob
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from re_vcr_ref import Re, Vcr  # noqa: E402
from uniter_itm_ref import Itm  # noqa: E402
from uniter_ref import Cfg, PairedAttn, Paired, Triplet, Vqa, gather_index  # noqa: E402

SHARED = ['input_ids', 'position_ids', 'img_feat', 'img_pos_feat', 'attn_masks', 'gather_index']
# The dict keys each UNITER collate returns (data/nlvr2.py nlvr2_paired_collate,
# data/vqa.py vqa_collate (ve_collate is it), data/itm.py itm_rank_collate,
# data/re.py re_collate, data/vcr.py vcr_collate).
COLLATE_KEYS = {
    'nlvr2': SHARED + ['img_type_ids', 'targets'],
    'vqa': SHARED + ['targets'],
    've': SHARED + ['targets'],
    'itm': SHARED + ['sample_size'],
    're': SHARED + ['obj_masks', 'targets', 'txt_lens', 'num_bbs'],
    'vcr': SHARED + ['txt_type_ids', 'targets'],
}
FLOAT_KEYS = {'img_feat', 'img_pos_feat'}


def build(task, cfg, arg):
    if task == 'nlvr2':
        model = {'paired': Paired, 'triplet': Triplet, 'paired-attn': PairedAttn}[arg or 'paired-attn'](cfg)
        model.init_type_embedding()
        return model
    if task in ('vqa', 've'):
        return Vqa(cfg, 3 if task == 've' else int(arg))
    if task == 'itm':
        return Itm(cfg)
    if task == 're':
        return Re(cfg, int(arg or 1))
    return Vcr(cfg)


def init(task, model_json, out, arg):
    torch.manual_seed(2024)
    cfg = Cfg(json.load(open(model_json)))
    model = build(task, cfg, arg)
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():  # off UNITER's init, so zero biases and unit LayerNorms count too
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    torch.save({k: v.clone() for k, v in model.state_dict().items()}, out)


def expected_dtype(task, key):
    if key in FLOAT_KEYS or (key == 'targets' and task in ('vqa', 've')):
        return np.float32
    if key == 'obj_masks':
        return np.bool_
    return np.int64


def check_collate(task, b):
    """The arrays agree with what UNITER's collate derives them from."""
    ids, masks = b['input_ids'], b['attn_masks']
    txt_lens = [int(n) for n in (ids != 0).sum(1)]
    num_bbs = [int(m) - t for m, t in zip(masks.sum(1), txt_lens)]
    if task == 're':  # re_collate's lists are the ground truth there (ids may hold no 0s)
        txt_lens, num_bbs = [int(x) for x in b['txt_lens']], [int(x) for x in b['num_bbs']]
    gi = gather_index(txt_lens, num_bbs, ids.shape[0], ids.shape[1], masks.shape[1]).numpy()
    errors = []
    if not np.array_equal(gi, b['gather_index']):
        errors.append('gather_index differs from get_gather_index(txt_lens, num_bbs, ...)')
    if not np.array_equal(b['position_ids'], np.arange(ids.shape[1])[None, :]):
        errors.append('position_ids is not arange(max_tl).unsqueeze(0)')
    if task == 'nlvr2':  # paired: rows 2k, 2k+1 typed 1 and 2 on their boxes, 0 on padding
        t = b['img_type_ids']
        for r, n in enumerate(num_bbs):
            if not ((t[r, :n] == 1 + r % 2).all() and (t[r, n:] == 0).all()):
                errors.append(f'img_type_ids row {r} is not {1 + r % 2} over its {n} boxes')
    return errors


def check(task, model_json, init_pt, folder, arg):
    cfg = Cfg(json.load(open(model_json)))
    model = build(task, cfg, arg)
    model.load_state_dict(torch.load(init_pt))
    if task == 'itm':
        model.init_output()  # train_itm.py: the pretrained ITM head seeds rank_output
    model.eval()
    files = sorted(glob.glob(os.path.join(folder, '*.npz')))
    ok = bool(files)
    for path in files:
        z = np.load(path)
        keys = list(z.files)
        errors = []
        want = set(COLLATE_KEYS[task]) | {'loss'}
        if set(keys) != want:
            errors.append(f'keys {sorted(keys)} != {sorted(want)}')
        for k in keys:
            want_dt = np.float32 if k == 'loss' else expected_dtype(task, k)
            if z[k].dtype != want_dt:
                errors.append(f'{k}: dtype {z[k].dtype}, UNITER has {np.dtype(want_dt)}')
        if z['loss'].shape != ():
            errors.append(f'loss has shape {z["loss"].shape}')
        arrays = {k: z[k] for k in keys}
        if not errors:
            errors += check_collate(task, arrays)
        b = {k: torch.from_numpy(v) for k, v in arrays.items()}
        if task == 're':
            b['txt_lens'], b['num_bbs'] = arrays['txt_lens'].tolist(), arrays['num_bbs'].tolist()
        with torch.no_grad():
            scores = model.scores(b)
            ref = float(model.train_loss(model.loss(scores, b), b))
        print(json.dumps({'file': os.path.basename(path), 'keys': keys, 'loss': float(arrays['loss']),
                          'ref': ref, 'errors': errors}))
        ok = ok and not errors
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    mode, task, model_json, path = sys.argv[1:5]
    if mode == 'init':
        init(task, model_json, path, sys.argv[5] if len(sys.argv) > 5 else '')
    elif mode == 'check':
        check(task, model_json, path, sys.argv[5], sys.argv[6] if len(sys.argv) > 6 else '')
    else:
        sys.exit(f'unknown mode {mode}')

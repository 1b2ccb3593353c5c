"""Peer of bench/itm_infer_bench: inf_itm.py's scoring loop (utils/itm_eval.py
inference over ItmEvalDataset's mini-batches: per text, per mini-batch of
images, one forward of the text repeated over the images) with the PyTorch
restatement of UNITER's model (tests/trainer/uniter_itm_ref.py), eval mode,
no_grad, on the checkpoint the bench wrote. Its inputs (inputs.pt) are the
features and token ids ours read from the bench's dbs, held in memory: the
peer's time leaves out reading the db (ours includes it), and its image
mini-batch is padded once, not once per text as ItmEvalDataset.get_batch
does. Prints {"seconds", "cpu_seconds", "max_abs_diff"} (against ours.json).

  itm_infer_peer.py --dir DIR --threads N --minibatch M
"""
import argparse
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'trainer'))
sys.path.insert(0, HERE)
import uniter_itm_ref  # noqa: E402
from uniter_ref import Cfg, gather_index  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--dir')
    ap.add_argument('--threads', type=int)
    ap.add_argument('--minibatch', type=int)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ours = json.load(open(os.path.join(a.dir, 'ours.json')))
    feats = torch.load(os.path.join(a.dir, 'inputs.pt'))
    model = uniter_itm_ref.Itm(Cfg(json.load(open(os.path.join(a.dir, 'model.json')))))
    model.load_state_dict(torch.load(os.path.join(a.dir, 'model.pt')), strict=True)
    model.eval()
    txt_ids, img_ids = ours['txt_ids'], ours['img_ids']
    nt, ni = len(txt_ids), len(img_ids)
    scores = torch.zeros(nt, ni)
    start, cpu0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        for st in range(0, ni, a.minibatch):
            names = img_ids[st:st + a.minibatch]
            nbbs = [feats['nbb.' + n].item() for n in names]
            n, max_nbb = len(names), max(nbbs)
            img_feat = torch.zeros(n, max_nbb, feats['feat.' + names[0]].size(1))
            img_pos = torch.zeros(n, max_nbb, 7)
            for i, name in enumerate(names):
                img_feat[i, :nbbs[i]] = feats['feat.' + name]
                img_pos[i, :nbbs[i]] = feats['pos.' + name]
            for t, tid in enumerate(txt_ids):
                ids = feats['txt.' + tid]
                tl = ids.size(0)
                attn = torch.zeros(n, tl + max_nbb, dtype=torch.long)
                for i, nbb in enumerate(nbbs):
                    attn[i, :tl + nbb] = 1
                b = {'input_ids': ids.unsqueeze(0).expand(n, -1).clone(),
                     'position_ids': torch.arange(tl).unsqueeze(0),
                     'img_feat': img_feat, 'img_pos_feat': img_pos, 'attn_masks': attn,
                     'gather_index': gather_index([tl] * n, nbbs, n, tl, tl + max_nbb)}
                scores[t, st:st + n] = model.scores(b).squeeze(-1)
    secs, cpu = time.perf_counter() - start, time.process_time() - cpu0
    diff = (scores - torch.tensor(ours['scores']).view(nt, ni)).abs().max().item()
    print(json.dumps({'seconds': secs, 'cpu_seconds': cpu, 'max_abs_diff': diff}))


if __name__ == '__main__':
    main()

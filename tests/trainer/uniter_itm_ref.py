"""A PyTorch/Python restatement of UNITER's image-text retrieval code
(ChenRocks/UNITER model/itm.py, data/itm.py's hard-negative datasets,
utils/itm_eval.py) used as the reference for the C++ ITM pieces.

Usage:
  uniter_itm_ref.py head OUT_DIR   -> OUT_DIR/model.json, OUT_DIR/io.pt (weights,
      "batch.*", "out.scores", "out.loss", "out.train_loss", "grad.*")
  uniter_itm_ref.py hardneg OUT_DIR -> io.pt with "bi.*" / "bt.*" batches (gather
      index as a correct collate builds it) and "out.loss_i_quirk",
      "out.loss_i_fixed", "out.loss_t" (the kept rows' hinge terms)
  uniter_itm_ref.py eval SCORES.json -> prints itm_eval's dict as JSON for both
      modes; SCORES.json = {"scores": [[...]], "txt_ids", "img_ids", "txt2img",
      "img2txts"}
  uniter_itm_ref.py results RESULTS.bin -> prints {"shape", "dtype", "scores",
      "txt_ids", "img_ids"} of pickle.load(results.bin)
"""
import json
import pickle
import sys

import numpy as np
import torch
from torch import nn

from uniter_ref import IMG_DIM, SMALL, Cfg, Uniter, gather_index, init_weights, make_batch


class Itm(nn.Module):
    """model/itm.py: UniterForImageTextRetrieval (+ the HardNeg subclass's forward)."""

    def __init__(self, c, margin=0.2, hard_size=16):
        super().__init__()
        self.uniter = Uniter(c, IMG_DIM)
        self.itm_output = nn.Linear(c.hidden_size, 2)
        self.rank_output = nn.Linear(c.hidden_size, 1)
        self.margin = margin
        self.hard_size = hard_size
        self.apply(init_weights(c.initializer_range))

    def init_output(self):
        self.rank_output.weight.data = self.itm_output.weight.data[1:, :]
        self.rank_output.bias.data = self.itm_output.bias.data[1:]

    def scores(self, b):
        seq = self.uniter(b['input_ids'], b['position_ids'], b['img_feat'], b['img_pos_feat'],
                          b['attn_masks'], b['gather_index'])
        return self.rank_output(self.uniter.pooler(seq))

    def loss(self, scores, b):
        s = torch.sigmoid(scores).contiguous().view(-1, int(b['sample_size']))
        return torch.clamp(self.margin + s[:, 1:] - s[:, :1], 0)

    def train_loss(self, loss, b):
        return loss.mean()

    def hard_forward(self, b, sample_from):
        with torch.no_grad():
            self.eval()
            scores = self.scores(b)
            hard = self.get_hard_batch(b, scores, sample_from)
            self.train()
        return self.loss(self.scores(hard), hard)

    def get_hard_batch(self, b, scores, sample_from):
        hard_indices = scores.squeeze(-1)[1:].topk(self.hard_size, sorted=False)[1] + 1
        indices = torch.cat([torch.zeros(1, dtype=torch.long), hard_indices])
        attn = b['attn_masks'].index_select(0, indices)
        gi = b['gather_index'].index_select(0, indices)
        ids, feat, pos = b['input_ids'], b['img_feat'], b['img_pos_feat']
        if sample_from == 't':
            max_len = attn.sum(dim=1).max().item()
            max_i = max_len - ids.size(1)
            attn, gi = attn[:, :max_len], gi[:, :max_len]
            feat = feat.index_select(0, indices)[:, :max_i, :]
            pos = pos.index_select(0, indices)[:, :max_i, :]
            ids = ids[:self.hard_size + 1]
        else:
            ids = ids.index_select(0, indices)
            feat, pos = feat[:self.hard_size + 1], pos[:self.hard_size + 1]
        return {'input_ids': ids, 'position_ids': b['position_ids'], 'img_feat': feat, 'img_pos_feat': pos,
                'attn_masks': attn, 'gather_index': gi, 'sample_size': self.hard_size + 1}


def perturb(model, g):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)


def head(out_dir):
    torch.manual_seed(1234)
    g = torch.Generator().manual_seed(77)
    c = Cfg(SMALL)
    model = Itm(c)
    perturb(model, g)
    model.init_output()  # after the perturbation: rank_output is itm_output row 1 (a view)
    # Two examples of sample_size 3 (negative_size 1): (t, i), (t, i'), (t', i).
    batch = make_batch(g, [6, 6, 9, 4, 4, 7], [5, 3, 5, 6, 2, 6], c.vocab_size)
    batch['sample_size'] = torch.tensor(3)
    model.eval()
    scores = model.scores(batch)
    loss = model.loss(scores, batch)
    train_loss = model.train_loss(loss, batch)
    train_loss.backward()
    io = {k: v.clone() for k, v in model.state_dict().items()}
    for k, p in model.named_parameters():
        if p.grad is not None:
            io['grad.' + k] = p.grad.clone()
    for k, v in batch.items():
        io['batch.' + k] = v
    io['out.scores'] = scores.detach()
    io['out.loss'] = loss.detach()
    io['out.train_loss'] = train_loss.detach().reshape(1)
    torch.save(io, f'{out_dir}/io.pt')
    with open(f'{out_dir}/model.json', 'w') as f:
        json.dump(SMALL, f)


def hardneg(out_dir):
    torch.manual_seed(4321)
    g = torch.Generator().manual_seed(11)
    cfg = dict(SMALL, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    c = Cfg(cfg)
    model = Itm(c, hard_size=3)
    perturb(model, g)
    model.init_output()
    io = {k: v.clone() for k, v in model.state_dict().items()}
    # 'i': one image (nbb 5) against 7 texts; the last text is not the longest.
    tls, nbb = [6, 9, 4, 11, 7, 5, 8], 5
    bi = make_batch(g, tls, [nbb] * len(tls), c.vocab_size)
    bi['img_feat'] = bi['img_feat'][:1].expand(len(tls), -1, -1).contiguous()
    bi['img_pos_feat'] = bi['img_pos_feat'][:1].expand(len(tls), -1, -1).contiguous()
    # 't': one text against 7 images.
    nbbs = [4, 7, 3, 6, 5, 2, 6]
    bt = make_batch(g, [8] * len(nbbs), nbbs, c.vocab_size)
    bt['input_ids'] = bt['input_ids'][:1].expand(len(nbbs), -1).contiguous()
    for name, b in (('bi', bi), ('bt', bt)):
        for k, v in b.items():
            io[f'{name}.{k}'] = v
    model.train()
    quirk = dict(bi)
    out = quirk['attn_masks'].size(1)
    # ItmRankDatasetHardNegFromImage: get_gather_index(txt_lens, ..., tl, ...) with the last tl.
    quirk['gather_index'] = gather_index(tls, [nbb] * len(tls), len(tls), tls[-1], out)
    io['out.loss_i_quirk'] = model.hard_forward(quirk, 'i').detach()
    io['out.loss_i_fixed'] = model.hard_forward(bi, 'i').detach()
    io['out.loss_t'] = model.hard_forward(bt, 't').detach()
    torch.save(io, f'{out_dir}/io.pt')
    with open(f'{out_dir}/model.json', 'w') as f:
        json.dump(cfg, f)


def top10(x):
    """topk(10) with equal scores by lower index first (torch.topk leaves that open)."""
    return np.argsort(-x, kind='stable')[:10]


def itm_eval(score_matrix, txt_ids, img_ids, txt2img, img2txts, quirk):
    """utils/itm_eval.py's itm_eval, line by line, on a numpy matrix."""
    img2j = {i: j for j, i in enumerate(img_ids)}
    rank_txt = np.stack([top10(row) for row in score_matrix])
    gt_img_j = np.array([img2j[txt2img[t]] for t in txt_ids])[:, None]
    rank = np.argwhere(rank_txt == gt_img_j)  # (row, place) pairs, as .nonzero()
    if not quirk:
        rank = rank[:, 1:]
    if rank.size:
        ir = [(rank < k).sum() / len(txt_ids) for k in (1, 5, 10)]
    else:
        ir = [0, 0, 0]
    txt2i = {t: i for i, t in enumerate(txt_ids)}
    rank_img = np.stack([top10(col) for col in score_matrix.T], axis=1)
    tr = [0, 0, 0]
    for j, img_id in enumerate(img_ids):
        gt_is = [txt2i[t] for t in img2txts[img_id]]
        ranks = [np.nonzero(rank_img[:, j] == i)[0] for i in gt_is]
        r = min([10] + [int(x[0]) for x in ranks if x.size])
        for n, k in enumerate((1, 5, 10)):
            tr[n] += r < k
    tr = [x / len(img_ids) for x in tr]
    tr_mean, ir_mean = sum(tr) / 3, sum(ir) / 3
    return {'txt_r1': tr[0], 'txt_r5': tr[1], 'txt_r10': tr[2], 'txt_r_mean': tr_mean,
            'img_r1': float(ir[0]), 'img_r5': float(ir[1]), 'img_r10': float(ir[2]), 'img_r_mean': float(ir_mean),
            'r_mean': float((tr_mean + ir_mean) / 2)}


def evaluate(path):
    with open(path) as f:
        d = json.load(f)
    s = np.array(d['scores'], dtype=np.float32)
    out = {mode: itm_eval(s, d['txt_ids'], d['img_ids'], d['txt2img'], d['img2txts'], mode == 'quirk')
           for mode in ('quirk', 'fixed')}
    print(json.dumps(out))


def results(path):
    with open(path, 'rb') as f:
        scores, txt_ids, img_ids = pickle.load(f)
    print(json.dumps({'type': type(scores).__name__, 'shape': list(scores.shape), 'dtype': str(scores.dtype),
                      'scores': scores.float().tolist(), 'txt_ids': txt_ids, 'img_ids': img_ids}))


if __name__ == '__main__':
    modes = {'head': head, 'hardneg': hardneg, 'eval': evaluate, 'results': results}
    if len(sys.argv) != 3 or sys.argv[1] not in modes:
        sys.exit(__doc__)
    modes[sys.argv[1]](sys.argv[2])

"""PyTorch / numpy restatements of UNITER's RE and VCR code (ChenRocks/UNITER
model/re.py, model/vcr.py, data/re.py:computeIoU, train_re.py:validate,
train_vcr.py:validate/compute_accuracies), the references for the C++ heads
and evaluation. The encoder is uniter_ref.py's restatement of model/model.py.

Usage:
  re_vcr_ref.py heads OUT_DIR re MLP | vcr   -> OUT_DIR/model.json, io.pt (as uniter_ref.py heads)
  re_vcr_ref.py re_rank OUT_DIR MLP SEED HARD_RATIO MARGIN ROUNDS
                                              -> the same, the rank loss over ROUNDS draws
  re_vcr_ref.py re_eval IN.json OUT.json      -> per item IoU and hit, accuracy
  re_vcr_ref.py vcr_eval IN.json OUT.json     -> counts, losses
"""
import json
import random
import sys

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, __import__('os').path.dirname(__file__))
from uniter_ref import GELU, SMALL, Cfg, Uniter, init_weights, layer_norm, make_batch, IMG_DIM  # noqa: E402


class Re(nn.Module):
    """UniterForReferringExpressionComprehension, loss 'cls'."""

    def __init__(self, c, mlp):
        super().__init__()
        self.uniter = Uniter(c, IMG_DIM)
        h = c.hidden_size
        if mlp == 1:
            self.re_output = nn.Linear(h, 1)
        else:
            self.re_output = nn.Sequential(nn.Linear(h, h), GELU(), layer_norm(h), nn.Linear(h, 1))
        self.apply(init_weights(c.initializer_range))

    def scores(self, b):
        seq = self.uniter(b['input_ids'], b['position_ids'], b['img_feat'], b['img_pos_feat'],
                          b['attn_masks'], b['gather_index'])
        outs = []
        max_bb = max(b['num_bbs'])
        for s, tl, nbb in zip(seq.split(1, dim=0), b['txt_lens'], b['num_bbs']):
            h = s[:, tl:tl + nbb, :]
            if nbb < max_bb:
                h = torch.cat([h, torch.zeros(1, max_bb - nbb, s.size(-1), dtype=s.dtype)], dim=1)
            outs.append(h)
        scores = self.re_output(torch.cat(outs, dim=0)).squeeze(2)
        return scores.masked_fill(b['obj_masks'], -1e4)

    def loss(self, scores, b):
        return nn.CrossEntropyLoss(reduction='none')(scores, b['targets'])

    def train_loss(self, loss, b):
        return loss.sum()  # train_re.py


def sample_neg_ix(scores, targets, num_bbs, hard_ratio):
    """Restates model/re.py's sample_neg_ix: per row one draw from numpy's global
    generator picks hard (the best-scored box other than the target) or random
    (Python's random.randint over the row's boxes until it misses the target)."""
    ranked = torch.argsort(scores, dim=-1, descending=True).tolist()
    picks = []
    for row, boxes in enumerate(num_bbs):
        target = int(targets[row])
        hard = np.random.uniform(0, 1, 1) < hard_ratio
        if hard:
            pick = next(b for b in ranked[row] if b != target)
            assert pick < boxes, (pick, boxes)
        else:
            pick = target
            while pick == target:
                pick = random.randint(0, boxes - 1)
        picks.append(pick)
    return torch.tensor(picks, dtype=targets.dtype)


def rank_loss(scores, targets, num_bbs, margin, hard_ratio):
    """model/re.py:forward's `rank` branch (targets (n, 1) as re_collate stacks them)."""
    _n = len(num_bbs)
    pos_sc = torch.sigmoid(scores.gather(1, targets.view(_n, 1))).view(-1)
    neg_ix = sample_neg_ix(scores, targets, num_bbs, hard_ratio)
    neg_sc = torch.sigmoid(scores.gather(1, neg_ix.view(_n, 1))).view(-1)
    return torch.clamp(margin + neg_sc - pos_sc, 0), neg_ix


class Vcr(nn.Module):
    """UniterForVisualCommonsenseReasoning with init_type_embedding / init_word_embedding(81)."""

    def __init__(self, c):
        super().__init__()
        self.uniter = Uniter(c, IMG_DIM)
        h = c.hidden_size
        self.vcr_output = nn.Sequential(nn.Linear(h, 2 * h), nn.ReLU(), layer_norm(2 * h), nn.Linear(2 * h, 2))
        self.apply(init_weights(c.initializer_range))
        c = self.uniter.config
        new = nn.Embedding(4, c.hidden_size)
        new.apply(init_weights(c.initializer_range))
        old = self.uniter.embeddings.token_type_embeddings.weight.data
        for i, src in enumerate([0, 1, 0, 0]):
            new.weight.data[i, :].copy_(old[src, :])
        self.uniter.embeddings.token_type_embeddings = new
        v = self.uniter.embeddings.word_embeddings.weight.size(0)
        words = nn.Embedding(v + 81, c.hidden_size)  # no padding_idx, as UNITER's
        words.apply(init_weights(c.initializer_range))
        words.weight.data[:v, :].copy_(self.uniter.embeddings.word_embeddings.weight.data)
        self.uniter.embeddings.word_embeddings = words

    def scores(self, b):
        seq = self.uniter(b['input_ids'], b['position_ids'], b['img_feat'], b['img_pos_feat'],
                          b['attn_masks'], b['gather_index'], txt_type_ids=b['txt_type_ids'])
        return self.vcr_output(self.uniter.pooler(seq))

    def loss(self, scores, b):
        return F.cross_entropy(scores, b['targets'], reduction='none')

    def train_loss(self, loss, b):
        return loss.mean()  # F.cross_entropy(..., reduction='mean')


def re_model_and_batch(mlp):
    torch.manual_seed(4321)
    g = torch.Generator().manual_seed(7)
    c = Cfg(SMALL)
    model = Re(c, mlp)
    tls, nbbs = [6, 9, 4, 7], [5, 8, 3, 8]
    batch = make_batch(g, tls, nbbs, c.vocab_size)
    obj = torch.ones(len(nbbs), max(nbbs), dtype=torch.bool)
    for i, n in enumerate(nbbs):
        obj[i, :n] = False
    batch['obj_masks'] = obj
    batch['txt_lens'], batch['num_bbs'] = tls, nbbs
    batch['targets'] = torch.tensor([2, 7, 0, 5])
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model, batch


def re_rank(out_dir, mlp, seed, hard_ratio, margin, rounds):
    """train_re.py with train_loss rank: set_random_seed(seed), then `rounds`
    losses on one batch's scores (the generators advance); round 0 backpropagated."""
    model, batch = re_model_and_batch(mlp)
    random.seed(seed)
    np.random.seed(seed)
    model.eval()
    scores = model.scores(batch)
    targets = batch['targets'].view(-1, 1)
    losses, negs = [], []
    for r in range(rounds):
        loss, neg = rank_loss(scores, targets, batch['num_bbs'], margin, hard_ratio)
        if r == 0:
            loss.sum().backward(retain_graph=True)
        losses.append(loss.detach())
        negs.append(neg)
    io = {k: v.clone() for k, v in model.state_dict().items()}
    for k, p in model.named_parameters():
        if p.grad is not None:
            io['grad.' + k] = p.grad.clone()
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            io['batch.' + k] = v
    io['batch.txt_lens'] = torch.tensor(batch['txt_lens'])
    io['batch.num_bbs'] = torch.tensor(batch['num_bbs'])
    io['out.scores'] = scores.detach()
    io['out.rank_loss'] = torch.stack(losses)
    io['out.neg_ix'] = torch.stack(negs)
    io['out.py_state'] = torch.tensor(list(random.getstate()[1]), dtype=torch.long)
    _, words, pos, _, _ = np.random.get_state()
    io['out.np_state'] = torch.tensor([int(w) for w in words] + [int(pos)], dtype=torch.long)
    torch.save(io, f'{out_dir}/io.pt')
    with open(f'{out_dir}/model.json', 'w') as f:
        json.dump(SMALL, f)


def heads(out_dir, task, mlp):
    torch.manual_seed(4321)
    g = torch.Generator().manual_seed(7)
    c = Cfg(SMALL)
    if task == 're':
        model = Re(c, mlp)
        tls, nbbs = [6, 9, 4, 7], [5, 8, 3, 8]
        batch = make_batch(g, tls, nbbs, c.vocab_size)
        obj = torch.ones(len(nbbs), max(nbbs), dtype=torch.bool)
        for i, n in enumerate(nbbs):
            obj[i, :n] = False
        batch['obj_masks'] = obj
        batch['txt_lens'], batch['num_bbs'] = tls, nbbs  # re_collate's lists
        batch['targets'] = torch.tensor([2, 7, 0, 5])
    else:
        model = Vcr(c)
        tls, nbbs = [8, 11, 9, 12, 7, 10], [6, 6, 6, 9, 9, 9]
        batch = make_batch(g, tls, nbbs, c.vocab_size + 81)
        types = torch.zeros_like(batch['input_ids'])
        for i, tl in enumerate(tls):
            types[i, 3:tl] = 2 + i % 2
        batch['txt_type_ids'] = types
        batch['input_ids'][0, 1] = 0  # a padding id inside the text: row 0 of the table gets a gradient
        batch['targets'] = torch.tensor([0, 1, 0, 0, 0, 1])
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
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
        if isinstance(v, torch.Tensor):
            io['batch.' + k] = v
    io['batch.txt_lens'] = torch.tensor(tls)
    io['batch.num_bbs'] = torch.tensor(nbbs)
    io['out.scores'] = scores.detach()
    io['out.loss'] = loss.detach()
    io['out.train_loss'] = train_loss.detach().reshape(1)
    torch.save(io, f'{out_dir}/io.pt')
    with open(f'{out_dir}/model.json', 'w') as f:
        json.dump(SMALL, f)


def compute_iou(a, b):
    """Restates data/re.py's computeIoU on [x, y, w, h] boxes: inclusive pixel
    corners (x + w - 1), an overlap only when strictly positive in both axes,
    float division at the end."""
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right = min(a[0] + a[2] - 1, b[0] + b[2] - 1)
    bottom = min(a[1] + a[3] - 1, b[1] + b[3] - 1)
    overlap = (right - left + 1) * (bottom - top + 1) if (left < right and top < bottom) else 0
    return float(overlap) / (a[2] * a[3] + b[2] * b[3] - overlap)


def re_eval(inp, out):
    """train_re.py:validate on given scores: argmax box (pos feats × size, float32) vs the target."""
    items = json.load(open(inp))
    res, hits = [], 0
    for it in items:
        scores = torch.tensor(it['scores'], dtype=torch.float32).unsqueeze(0)
        ix = torch.argmax(scores, 1).numpy()[0]
        pos = torch.tensor(it['pos'], dtype=torch.float32)  # [nbb, 7]
        w, h = it['width'], it['height']
        obj_boxes = np.stack([pos[:, 0] * w, pos[:, 1] * h, pos[:, 4] * w, pos[:, 5] * h], axis=1)
        tgt = np.array(it['bbox'])
        pred = obj_boxes[ix]
        iou = compute_iou(pred, tgt)
        hit = iou > .5
        hits += hit
        res.append({'ix': int(ix), 'iou': iou, 'hit': bool(hit), 'pred_box': pred.tolist()})
    json.dump({'items': res, 'acc': hits / len(items)}, open(out, 'w'))


def vcr_eval(inp, out):
    """train_vcr.py:validate's arithmetic on given [n, 8|20] scores."""
    d = json.load(open(inp))
    scores = torch.tensor(d['scores'], dtype=torch.float32)
    qa_targets = torch.tensor(d['qa_targets']).unsqueeze(-1)
    qar_targets = torch.tensor(d['qar_targets']).unsqueeze(-1)
    qa_loss = F.cross_entropy(scores[:, :4], qa_targets.squeeze(-1), reduction='sum')
    if scores.shape[1] > 8:
        qar_scores = torch.stack([scores[b, [4 + qa_targets[b].item() * 4 + i for i in range(4)]]
                                  for b in range(scores.shape[0])], dim=0)
    else:
        qar_scores = scores[:, 4:]
    qar_loss = F.cross_entropy(qar_scores, qar_targets.squeeze(-1), reduction='sum')
    outputs_qa = scores[:, :4].max(dim=-1)[1]
    outputs_qar = qar_scores.max(dim=-1)[1]
    matched_qa = outputs_qa.squeeze() == qa_targets.squeeze()
    matched_qar = outputs_qar.squeeze() == qar_targets.squeeze()
    json.dump({'qa': matched_qa.sum().item(), 'qar': matched_qar.sum().item(),
               'both': (matched_qa & matched_qar).sum().item(),
               'qa_loss': qa_loss.item(), 'qar_loss': qar_loss.item()}, open(out, 'w'))


if __name__ == '__main__':
    mode = sys.argv[1]
    if mode == 'heads':
        heads(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    elif mode == 're_rank':
        re_rank(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]),
                int(sys.argv[7]))
    elif mode == 're_eval':
        re_eval(sys.argv[2], sys.argv[3])
    elif mode == 'vcr_eval':
        vcr_eval(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f'unknown mode {mode}')

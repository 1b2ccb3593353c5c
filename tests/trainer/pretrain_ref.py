"""A PyTorch / NumPy restatement of UNITER's pretraining code (ChenRocks/UNITER
model/pretrain.py, model/ot.py, layer.py's BertOnlyMLMHead, data/mlm.py
random_word, data/mrm.py _get_img_mask and the mrm/itm collates' targets,
pretrain.py's loss reduction), the reference for the C++ pretraining model.

Usage:
  pretrain_ref.py heads OUT_DIR TASK   TASK = mlm | mrfr | mrc | mrc-kl | itm
      OUT_DIR/model.json, OUT_DIR/io.pt: the state dict (UNITER keys), the
      batch ("batch.<key>"), "out.loss" (reduction none), "out.train_loss",
      ITM "out.ot_pos"/"out.ot_neg", and "grad.<key>" per parameter.
  pretrain_ref.py vcr_heads OUT_DIR TASK   TASK = mlm | mrfr | mrc-kl
      model/pretrain_vcr.py's set-up and forward: as heads, plus "pre.<key>"
      (the weights before init_type_embedding / init_word_embedding(81), run
      after torch.manual_seed(99)), "expanded.<key>" (right after them), then
      the weights perturbed again, and VCR txt_type_ids / special-token ids.
  pretrain_ref.py ipot OUT_DIR
      OUT_DIR/io.pt: random costs and paddings ("in.*") and NumPy's IPOT plan
      and distance ("out.T", "out.dist") in float64.
  pretrain_ref.py masks SEED N
      prints UNITER's random_word / _get_img_mask draws for N generated
      sentences from random.seed(SEED), one line each.
"""
import json
import random
import sys
from os.path import dirname

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, dirname(__file__))
from uniter_ref import GELU, IMG_DIM, SMALL, Cfg, Uniter, gelu, init_weights, layer_norm, make_batch  # noqa: E402

IMG_LABEL_DIM = 1601


class MlmHead(nn.Module):
    """layer.py: BertOnlyMLMHead → BertLMPredictionHead (decoder tied to the word embeddings)."""

    def __init__(self, c, emb_weight):
        super().__init__()
        self.predictions = nn.Module()
        self.predictions.transform = nn.Module()
        self.predictions.transform.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.predictions.transform.LayerNorm = layer_norm(c.hidden_size)
        self.predictions.decoder = nn.Linear(emb_weight.size(1), emb_weight.size(0), bias=False)
        self.predictions.decoder.weight = emb_weight
        self.predictions.bias = nn.Parameter(torch.zeros(emb_weight.size(0)))

    def forward(self, h):
        p = self.predictions
        h = p.transform.LayerNorm(gelu(p.transform.dense(h)))
        return p.decoder(h) + p.bias


class FeatRegress(nn.Module):
    def __init__(self, hidden, feat_dim, img_linear_weight):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(hidden, hidden), GELU(), layer_norm(hidden))
        self.weight = img_linear_weight
        self.bias = nn.Parameter(torch.zeros(feat_dim))

    def forward(self, x):
        return F.linear(self.net(x), self.weight.t(), self.bias)


class RegionClassifier(nn.Module):
    def __init__(self, hidden, label_dim):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(hidden, hidden), GELU(), layer_norm(hidden),
                                 nn.Linear(hidden, label_dim))

    def forward(self, x):
        return self.net(x)


def cost_matrix_cosine(x, y, eps=1e-5):
    xn = F.normalize(x, p=2, dim=-1, eps=eps)
    yn = F.normalize(y, p=2, dim=-1, eps=eps)
    return 1 - xn.matmul(yn.transpose(1, 2))


def trace(x):
    b, m, n = x.size()
    mask = torch.eye(n, dtype=torch.bool, device=x.device).unsqueeze(0).expand_as(x)
    return x.masked_select(mask).contiguous().view(b, n).sum(dim=-1)


@torch.no_grad()
def ipot(C, x_len, x_pad, y_len, y_pad, joint_pad, beta, iteration, k):
    b, m, n = C.size()
    sigma = torch.ones(b, m, dtype=C.dtype, device=C.device) / x_len.unsqueeze(1)
    T = torch.ones(b, n, m, dtype=C.dtype, device=C.device)
    A = torch.exp(-C.transpose(1, 2) / beta)
    sigma.masked_fill_(x_pad, 0)
    joint_pad = joint_pad.transpose(1, 2)
    T.masked_fill_(joint_pad, 0)
    A.masked_fill_(joint_pad, 0)
    x_len = x_len.unsqueeze(1).unsqueeze(2)
    y_len = y_len.unsqueeze(1).unsqueeze(2)
    x_mask = (x_pad.to(C.dtype) * 1e4).unsqueeze(1)
    y_mask = (y_pad.to(C.dtype) * 1e4).unsqueeze(1)
    for _ in range(iteration):
        Q = A * T
        sigma = sigma.view(b, m, 1)
        for _ in range(k):
            delta = 1 / (y_len * Q.matmul(sigma).view(b, 1, n) + y_mask)
            sigma = 1 / (x_len * delta.matmul(Q) + x_mask)
        T = delta.view(b, n, 1) * Q * sigma
    T.masked_fill_(joint_pad, 0)
    return T


def optimal_transport_dist(txt_emb, img_emb, txt_pad, img_pad, beta=0.5, iteration=50, k=1):
    cost = cost_matrix_cosine(txt_emb, img_emb)
    joint_pad = txt_pad.unsqueeze(-1) | img_pad.unsqueeze(-2)
    cost.masked_fill_(joint_pad, 0)
    txt_len = (txt_pad.size(1) - txt_pad.sum(dim=1)).to(dtype=cost.dtype)
    img_len = (img_pad.size(1) - img_pad.sum(dim=1)).to(dtype=cost.dtype)
    T = ipot(cost.detach(), txt_len, txt_pad, img_len, img_pad, joint_pad, beta, iteration, k)
    return trace(cost.matmul(T.detach()))


class Pretrain(nn.Module):
    """model/pretrain.py: UniterForPretraining."""

    def __init__(self, c):
        super().__init__()
        self.uniter = Uniter(c, IMG_DIM)
        self.cls = MlmHead(c, self.uniter.embeddings.word_embeddings.weight)
        self.feat_regress = FeatRegress(c.hidden_size, IMG_DIM, self.uniter.img_embeddings.img_linear.weight)
        self.region_classifier = RegionClassifier(c.hidden_size, IMG_LABEL_DIM)
        self.itm_output = nn.Linear(c.hidden_size, 2)
        self.apply(init_weights(c.initializer_range))

    def encode(self, b, img_masks=None):
        return self.uniter(b['input_ids'], b['position_ids'], b['img_feat'], b['img_pos_feat'],
                           b['attn_masks'], b['gather_index'], img_masks=img_masks,
                           txt_type_ids=b.get('txt_type_ids'))

    def init_type_embedding(self):
        """UniterForPretrainingForVCR.init_type_embedding."""
        c = self.uniter.config
        new = nn.Embedding(4, c.hidden_size)
        new.apply(init_weights(c.initializer_range))
        old = self.uniter.embeddings.token_type_embeddings.weight.data
        for i, src in enumerate([0, 1, 0, 0]):
            new.weight.data[i, :].copy_(old[src, :])
        self.uniter.embeddings.token_type_embeddings = new

    def init_word_embedding(self, num_special_tokens):
        """UniterForPretrainingForVCR.init_word_embedding: a new cls head tied to the new table."""
        c = self.uniter.config
        v = self.uniter.embeddings.word_embeddings.weight.size(0)
        new = nn.Embedding(v + num_special_tokens, c.hidden_size)
        new.apply(init_weights(c.initializer_range))
        new.weight.data[:v, :].copy_(self.uniter.embeddings.word_embeddings.weight.data)
        self.uniter.embeddings.word_embeddings = new
        self.cls = MlmHead(c, new.weight)

    @staticmethod
    def masked_hidden(hidden, mask):
        mask = mask.unsqueeze(-1).expand_as(hidden)
        return hidden[mask].contiguous().view(-1, hidden.size(-1))

    def forward(self, b, task):
        if task == 'mlm':
            seq = self.encode(b)[:, :b['input_ids'].size(1), :]
            scores = self.cls(self.masked_hidden(seq, b['txt_labels'] != -1))
            return F.cross_entropy(scores, b['txt_labels'][b['txt_labels'] != -1], reduction='none'), None
        if task == 'mrfr':
            out = self.masked_hidden(self.encode(b, b['img_masks']), b['img_mask_tgt'])
            return F.mse_loss(self.feat_regress(out), b['feat_targets'], reduction='none'), None
        if task.startswith('mrc'):
            out = self.region_classifier(self.masked_hidden(self.encode(b, b['img_masks']), b['img_mask_tgt']))
            if 'kl' in task:
                return F.kl_div(F.log_softmax(out, dim=-1), b['label_targets'], reduction='none'), None
            targets = torch.max(b['label_targets'][:, 1:], dim=-1)[1] + 1
            return F.cross_entropy(out, targets, ignore_index=0, reduction='none'), None
        # itm with OT
        seq = self.encode(b)
        itm_scores = self.itm_output(self.uniter.pooler(seq))
        bs, tl, il = seq.size(0), b['input_ids'].size(1), b['img_feat'].size(1)
        max_l = max(int(b['ot_scatter'].max()) + 1, tl + il)
        idx = b['ot_scatter'].unsqueeze(-1).expand_as(seq)
        ctx = torch.zeros(bs, max_l, seq.size(2), dtype=seq.dtype, device=seq.device).scatter_(dim=1, index=idx, src=seq)
        dist = optimal_transport_dist(ctx[:, :tl, :].float(), ctx[:, tl:tl + il, :].float(),
                                      b['txt_pad'], b['img_pad']).to(seq)
        ot = (dist.masked_select(b['targets'] == 1), dist.masked_select(b['targets'] == 0))
        return F.cross_entropy(itm_scores, b['targets'], reduction='none'), ot


def train_loss(task, loss, ot, itm_ot_lambda):
    """pretrain.py's reduction."""
    if task == 'itm' and ot is not None:
        ot_pos, ot_neg = ot
        ot_loss = (ot_pos.sum() - ot_neg.sum()) / (ot_pos.size(0) + ot_neg.size(0))
        return loss.mean() + itm_ot_lambda * ot_loss
    return loss.mean()


def ot_scatter(txt_lens, max_txt_len, joint_len):
    s = torch.arange(0, joint_len, dtype=torch.long).unsqueeze(0).repeat(len(txt_lens), 1)
    for i, tl in enumerate(txt_lens):
        s[i, tl:] = torch.arange(max_txt_len, max_txt_len + (joint_len - tl), dtype=torch.long)
    return s


def pad_mask(lens, max_len):
    pad = torch.zeros(len(lens), max_len, dtype=torch.bool)
    for i, l in enumerate(lens):
        pad[i, l:] = True
    return pad


def heads(out_dir, task, vcr=False):
    torch.manual_seed(4321)
    g = torch.Generator().manual_seed(7)
    c = Cfg(SMALL)
    model = Pretrain(c)
    txt_lens, nbbs = [7, 4, 10, 5], [5, 8, 3, 6]
    b = make_batch(g, txt_lens, nbbs, c.vocab_size)
    io = {}
    if vcr:
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=g) * 0.05)
        io.update({'pre.' + k: v.clone() for k, v in model.state_dict().items()})
        torch.manual_seed(99)
        model.init_type_embedding()
        model.init_word_embedding(81)
        io.update({'expanded.' + k: v.clone() for k, v in model.state_dict().items()})
        # VCR text: question 0, answer 2, rationale 3; special tokens person_0.. past the vocabulary.
        types = torch.zeros_like(b['input_ids'])
        for i, tl in enumerate(txt_lens):
            types[i, tl // 3:tl] = 2
            types[i, 2 * tl // 3:tl] = 3
            b['input_ids'][i, 1] = c.vocab_size + i * 20
        b['txt_type_ids'] = types
    if task == 'mlm':
        labels = torch.full(b['input_ids'].shape, -1, dtype=torch.long)
        for i, tl in enumerate(txt_lens):
            pick = torch.rand(tl, generator=g) < 0.4
            pick[1] = True
            labels[i, :tl][pick] = torch.randint(1, c.vocab_size, (int(pick.sum()),), generator=g)
        b['txt_labels'] = labels
    elif task in ('mrfr', 'mrc', 'mrc-kl'):
        masks = torch.zeros(len(nbbs), max(nbbs), dtype=torch.bool)
        for i, nb in enumerate(nbbs):
            masks[i, :nb] = torch.rand(nb, generator=g) < 0.4
            masks[i, 0] = True
        b['feat_targets'] = b['img_feat'][masks.unsqueeze(-1).expand_as(b['img_feat'])].view(-1, IMG_DIM)
        b['img_feat'] = b['img_feat'].masked_fill(masks.unsqueeze(-1), 0)
        b['img_masks'] = masks
        tgt = torch.zeros(len(nbbs), b['attn_masks'].size(1), dtype=torch.bool)
        for i, (tl, nb) in enumerate(zip(txt_lens, nbbs)):
            tgt[i, tl:tl + nb] = masks[i, :nb]
        b['img_mask_tgt'] = tgt
        soft = torch.softmax(torch.randn(int(masks.sum()), IMG_LABEL_DIM, generator=g) * 3, dim=-1)
        b['label_targets'] = soft
        if task == 'mrfr':
            del b['label_targets']
        else:
            del b['feat_targets']
    else:
        b['targets'] = torch.tensor([1, 0, 0, 1], dtype=torch.long)
        b['ot_scatter'] = ot_scatter(txt_lens, max(txt_lens), b['attn_masks'].size(1))
        b['scatter_max'] = b['ot_scatter'].max()
        b['txt_pad'] = pad_mask(txt_lens, max(txt_lens))
        b['img_pad'] = pad_mask(nbbs, max(nbbs))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
        # UNITER zeroes mask_embedding row 0 on every masked forward; start so.
        model.uniter.img_embeddings.mask_embedding.weight[0].zero_()
    model.eval()
    loss, ot = model(b, task)
    tl = train_loss(task, loss, ot, 0.1)
    tl.backward()
    io.update({k: v.clone() for k, v in model.state_dict().items()})
    for k, p in model.named_parameters():
        if p.grad is not None:
            io['grad.' + k] = p.grad.clone()
    for k, v in b.items():
        io['batch.' + k] = v if torch.is_tensor(v) else torch.tensor(v)
    io['out.loss'] = loss.detach()
    io['out.train_loss'] = tl.detach().reshape(1)
    if ot is not None:
        io['out.ot_pos'], io['out.ot_neg'] = ot[0].detach(), ot[1].detach()
    torch.save(io, f'{out_dir}/io.pt')
    with open(f'{out_dir}/model.json', 'w') as f:
        json.dump(SMALL, f)


def ipot_numpy(C, x_len, x_pad, y_len, y_pad, joint_pad, beta, iteration, k):
    """The IPOT iteration written again in NumPy (float64), loop by loop."""
    b, m, n = C.shape
    sigma = np.where(x_pad, 0.0, 1.0 / x_len[:, None])
    T = np.where(joint_pad.transpose(0, 2, 1), 0.0, 1.0)
    A = np.where(joint_pad.transpose(0, 2, 1), 0.0, np.exp(-C.transpose(0, 2, 1) / beta))
    for _ in range(iteration):
        Q = A * T  # [b, n, m]
        for _ in range(k):
            delta = 1.0 / (y_len[:, None] * np.einsum('bnm,bm->bn', Q, sigma) + y_pad * 1e4)
            sigma = 1.0 / (x_len[:, None] * np.einsum('bn,bnm->bm', delta, Q) + x_pad * 1e4)
        T = delta[:, :, None] * Q * sigma[:, None, :]
    return np.where(joint_pad.transpose(0, 2, 1), 0.0, T)


def ipot_case(out_dir):
    rng = np.random.default_rng(11)
    b, m, n, d = 3, 6, 9, 16
    x, y = rng.normal(size=(b, m, d)), rng.normal(size=(b, n, d))
    x_lens, y_lens = np.array([6, 4, 2]), np.array([9, 5, 7])
    x_pad = np.arange(m)[None, :] >= x_lens[:, None]
    y_pad = np.arange(n)[None, :] >= y_lens[:, None]
    joint = x_pad[:, :, None] | y_pad[:, None, :]
    xn = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-5)
    yn = y / np.maximum(np.linalg.norm(y, axis=-1, keepdims=True), 1e-5)
    C = np.where(joint, 0.0, 1.0 - xn @ yn.transpose(0, 2, 1))
    T = ipot_numpy(C, x_lens.astype(float), x_pad, y_lens.astype(float), y_pad, joint, 0.5, 50, 1)
    dist = np.einsum('bmn,bnm->b', C, T)
    io = {'in.x': torch.from_numpy(x), 'in.y': torch.from_numpy(y), 'in.x_pad': torch.from_numpy(x_pad),
          'in.y_pad': torch.from_numpy(y_pad), 'in.C': torch.from_numpy(C), 'in.joint_pad': torch.from_numpy(joint),
          'in.x_len': torch.from_numpy(x_lens.astype(float)), 'in.y_len': torch.from_numpy(y_lens.astype(float)),
          'out.T': torch.from_numpy(T), 'out.dist': torch.from_numpy(dist)}
    torch.save(io, f'{out_dir}/io.pt')


def random_word(tokens, vocab_range, mask):
    """data/mlm.py, as UNITER has it."""
    output_label = []
    for i, token in enumerate(tokens):
        prob = random.random()
        if prob < 0.15:
            prob /= 0.15
            if prob < 0.8:
                tokens[i] = mask
            elif prob < 0.9:
                tokens[i] = random.choice(list(range(*vocab_range)))
            output_label.append(token)
        else:
            output_label.append(-1)
    if all(o == -1 for o in output_label):
        output_label[0] = tokens[0]
        tokens[0] = mask
    return tokens, output_label


def get_img_mask(mask_prob, num_bb):
    """data/mrm.py's _get_img_mask, as a list."""
    img_mask = [random.random() < mask_prob for _ in range(num_bb)]
    if not any(img_mask):
        img_mask[random.choice(range(num_bb))] = True
    return img_mask


def masks(seed, n):
    """Sentences i: tokens 1000 + 7·i + j (length 1 + i % 13); then a region mask of 1 + i % 40 boxes."""
    random.seed(seed)
    for i in range(n):
        toks = [1000 + 7 * i + j for j in range(1 + i % 13)]
        ids, labels = random_word(toks, (999, 28996), 103)
        img = get_img_mask(0.15, 1 + i % 40)
        print(' '.join(map(str, ids)), '|', ' '.join(map(str, labels)), '|', ''.join('1' if m else '0' for m in img))


if __name__ == '__main__':
    if sys.argv[1] == 'heads':
        heads(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == 'vcr_heads':
        heads(sys.argv[2], sys.argv[3], vcr=True)
    elif sys.argv[1] == 'ipot':
        ipot_case(sys.argv[2])
    elif sys.argv[1] == 'masks':
        masks(int(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit(f'unknown mode {sys.argv[1]}')

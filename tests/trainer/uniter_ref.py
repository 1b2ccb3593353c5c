"""A PyTorch restatement of UNITER's model code (ChenRocks/UNITER model/model.py,
layer.py, attention.py, nlvr2.py, vqa.py, ve.py) used as the reference for the
C++ model: same modules, attribute names, math and losses. apex's
FusedLayerNorm is plain LayerNorm; PairedAttn's attention is torch's own
multi_head_attention_forward (UNITER ships a copy of PyTorch 1.1's).

Usage: uniter_ref.py heads OUT_DIR TASK [VARIANT]   TASK = nlvr2 | vqa | ve
Writes OUT_DIR/model.json, OUT_DIR/io.pt: a plain dict of the model's state
dict (UNITER keys), the batch ("batch.<key>") and the expected outputs
("out.scores", "out.loss", "out.train_loss").
UNITER_REF_AUTOCAST=bf16 runs the forward pass (scores and losses) under
torch.autocast("cpu", dtype=torch.bfloat16).
"""
import json
import math
import os
import sys

import torch
from torch import nn
from torch.nn import functional as F

IMG_DIM = 2048


def gelu(x):
    return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


class GELU(nn.Module):
    def forward(self, x):
        return gelu(x)


def layer_norm(n):
    return nn.LayerNorm(n, eps=1e-12)


class Cfg:
    def __init__(self, d):
        self.__dict__.update(d)


class TextEmb(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=0)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = layer_norm(c.hidden_size)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, ids, pos, types=None):
        if types is None:
            types = torch.zeros_like(ids)
        e = self.word_embeddings(ids) + self.position_embeddings(pos) + self.token_type_embeddings(types)
        return self.dropout(self.LayerNorm(e))


class ImgEmb(nn.Module):
    def __init__(self, c, img_dim):
        super().__init__()
        self.img_linear = nn.Linear(img_dim, c.hidden_size)
        self.img_layer_norm = layer_norm(c.hidden_size)
        self.pos_layer_norm = layer_norm(c.hidden_size)
        self.pos_linear = nn.Linear(7, c.hidden_size)
        self.mask_embedding = nn.Embedding(2, img_dim, padding_idx=0)
        self.LayerNorm = layer_norm(c.hidden_size)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, feat, pos, type_emb, masks=None):
        if masks is not None:
            self.mask_embedding.weight.data[0, :].fill_(0)
            feat = feat + self.mask_embedding(masks.long())
        a = self.img_layer_norm(self.img_linear(feat))
        b = self.pos_layer_norm(self.pos_linear(pos))
        return self.dropout(self.LayerNorm(a + b + type_emb))


class SelfAttn(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.h = c.num_attention_heads
        self.d = c.hidden_size // c.num_attention_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)
        self.dropout = nn.Dropout(c.attention_probs_dropout_prob)

    def split(self, x):
        return x.view(x.size()[:-1] + (self.h, self.d)).permute(0, 2, 1, 3)

    def forward(self, x, mask):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.d) + mask
        p = self.dropout(nn.Softmax(dim=-1)(s))
        ctx = torch.matmul(p, v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(ctx.size()[:-2] + (self.h * self.d,))


class ResOut(nn.Module):
    def __init__(self, i, h, p):
        super().__init__()
        self.dense = nn.Linear(i, h)
        self.LayerNorm = layer_norm(h)
        self.dropout = nn.Dropout(p)

    def forward(self, x, res):
        return self.LayerNorm(self.dropout(self.dense(x)) + res)


class Attn(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = SelfAttn(c)
        self.output = ResOut(c.hidden_size, c.hidden_size, c.hidden_dropout_prob)

    def forward(self, x, mask):
        return self.output(self.self(x, mask), x)


class Inter(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)

    def forward(self, x):
        return gelu(self.dense(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = Attn(c)
        self.intermediate = Inter(c)
        self.output = ResOut(c.intermediate_size, c.hidden_size, c.hidden_dropout_prob)

    def forward(self, x, mask):
        a = self.attention(x, mask)
        return self.output(self.intermediate(a), a)


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([Layer(c) for _ in range(c.num_hidden_layers)])

    def forward(self, x, mask):
        for m in self.layer:
            x = m(x, mask)
        return x


class Pooler(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, h):
        return self.activation(self.dense(h[:, 0]))


def init_weights(std):
    def fn(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            m.weight.data.normal_(mean=0.0, std=std)
        elif isinstance(m, nn.LayerNorm):
            m.bias.data.zero_()
            m.weight.data.fill_(1.0)
        if isinstance(m, nn.Linear) and m.bias is not None:
            m.bias.data.zero_()
    return fn


class Uniter(nn.Module):
    def __init__(self, c, img_dim):
        super().__init__()
        self.config = c
        self.embeddings = TextEmb(c)
        self.img_embeddings = ImgEmb(c, img_dim)
        self.encoder = Encoder(c)
        self.pooler = Pooler(c)
        self.apply(init_weights(c.initializer_range))

    def forward(self, ids, pos, feat, pos_feat, attn_masks, gather_index=None,
                img_masks=None, txt_type_ids=None, img_type_ids=None):
        ext = attn_masks.unsqueeze(1).unsqueeze(2).to(dtype=next(self.parameters()).dtype)
        ext = (1.0 - ext) * -10000.0
        txt = self.embeddings(ids, pos, txt_type_ids)
        if img_type_ids is None:
            img_type_ids = torch.ones_like(feat[:, :, 0].long())
        img = self.img_embeddings(feat, pos_feat, self.embeddings.token_type_embeddings(img_type_ids), img_masks)
        gi = gather_index.unsqueeze(-1).expand(-1, -1, self.config.hidden_size)
        emb = torch.gather(torch.cat([txt, img], dim=1), dim=1, index=gi)
        return self.encoder(emb, ext)


class Nlvr2Base(nn.Module):
    def init_type_embedding(self):
        c = self.uniter.config
        new = nn.Embedding(3, c.hidden_size)
        new.apply(init_weights(c.initializer_range))
        old = self.uniter.embeddings.token_type_embeddings.weight.data
        for i in [0, 1]:
            new.weight.data[i, :].copy_(old[i, :])
        new.weight.data[2, :].copy_(old[1, :])
        self.uniter.embeddings.token_type_embeddings = new

    def seq(self, b):
        return self.uniter(b['input_ids'], b['position_ids'], b['img_feat'], b['img_pos_feat'],
                           b['attn_masks'], b['gather_index'], img_type_ids=b['img_type_ids'])

    def loss(self, scores, b):
        return F.cross_entropy(scores, b['targets'], reduction='none')

    def train_loss(self, loss, b):
        return loss.mean()


class Paired(Nlvr2Base):
    def __init__(self, c):
        super().__init__()
        self.uniter = Uniter(c, IMG_DIM)
        self.nlvr2_output = nn.Linear(c.hidden_size * 2, 2)
        self.apply(init_weights(c.initializer_range))

    def scores(self, b):
        pooled = self.uniter.pooler(self.seq(b))
        return self.nlvr2_output(pooled.contiguous().view(pooled.size(0) // 2, -1))


class Triplet(Nlvr2Base):
    def __init__(self, c):
        super().__init__()
        self.uniter = Uniter(c, IMG_DIM)
        self.nlvr2_output = nn.Linear(c.hidden_size, 2)
        self.apply(init_weights(c.initializer_range))

    def scores(self, b):
        return self.nlvr2_output(self.uniter.pooler(self.seq(b)))


class AttentionPool(nn.Module):
    def __init__(self, h, drop):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(h, 1), nn.ReLU())
        self.dropout = nn.Dropout(drop)

    def forward(self, x, mask):
        s = self.fc(x).squeeze(-1) + mask.to(dtype=x.dtype) * -1e4
        w = self.dropout(F.softmax(s, dim=1))
        return w.unsqueeze(1).matmul(x).squeeze(1)


class MHA(nn.Module):
    """UNITER's MultiheadAttention: packed in_proj, sequence-first."""
    def __init__(self, e, h, drop):
        super().__init__()
        self.e, self.h, self.dropout = e, h, drop
        self.in_proj_weight = nn.Parameter(torch.empty(3 * e, e))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * e))
        self.out_proj = nn.Linear(e, e)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.constant_(self.in_proj_bias, 0.)
        nn.init.constant_(self.out_proj.bias, 0.)

    def forward(self, q, k, v, key_padding_mask):
        out, _ = F.multi_head_attention_forward(
            q, k, v, self.e, self.h, self.in_proj_weight, self.in_proj_bias, None, None, False,
            self.dropout, self.out_proj.weight, self.out_proj.bias, training=self.training,
            key_padding_mask=key_padding_mask, need_weights=False)
        return out


class PairedAttn(Nlvr2Base):
    def __init__(self, c):
        super().__init__()
        h = c.hidden_size
        self.uniter = Uniter(c, IMG_DIM)
        self.attn1 = MHA(h, c.num_attention_heads, c.attention_probs_dropout_prob)
        self.attn2 = MHA(h, c.num_attention_heads, c.attention_probs_dropout_prob)
        self.fc = nn.Sequential(nn.Linear(2 * h, h), nn.ReLU(), nn.Dropout(c.hidden_dropout_prob))
        self.attn_pool = AttentionPool(h, c.attention_probs_dropout_prob)
        self.nlvr2_output = nn.Linear(2 * h, 2)
        self.apply(init_weights(c.initializer_range))

    def scores(self, b):
        out = self.seq(b)
        bs, tl, d = out.size()
        left, right = out.contiguous().view(bs // 2, tl * 2, d).chunk(2, dim=1)
        mask = b['attn_masks'] == 0
        lm, rm = mask.contiguous().view(bs // 2, tl * 2).chunk(2, dim=1)
        left, right = left.transpose(0, 1), right.transpose(0, 1)
        l2r = self.attn1(left, right, right, key_padding_mask=rm)
        r2l = self.attn2(right, left, left, key_padding_mask=lm)
        left = self.fc(torch.cat([l2r, left], dim=-1)).transpose(0, 1)
        right = self.fc(torch.cat([r2l, right], dim=-1)).transpose(0, 1)
        return self.nlvr2_output(torch.cat([self.attn_pool(left, lm), self.attn_pool(right, rm)], dim=-1))


class Vqa(nn.Module):
    def __init__(self, c, num_answer):
        super().__init__()
        h = c.hidden_size
        self.uniter = Uniter(c, IMG_DIM)
        self.vqa_output = nn.Sequential(nn.Linear(h, 2 * h), GELU(), layer_norm(2 * h), nn.Linear(2 * h, num_answer))
        self.apply(init_weights(c.initializer_range))

    def scores(self, b):
        seq = self.uniter(b['input_ids'], b['position_ids'], b['img_feat'], b['img_pos_feat'],
                          b['attn_masks'], b['gather_index'])
        return self.vqa_output(self.uniter.pooler(seq))

    def loss(self, scores, b):
        return F.binary_cross_entropy_with_logits(scores, b['targets'], reduction='none')

    def train_loss(self, loss, b):
        return loss.mean() * b['targets'].size(1)


SMALL = dict(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
             intermediate_size=64, hidden_act="gelu", hidden_dropout_prob=0.1,
             attention_probs_dropout_prob=0.1, max_position_embeddings=64, type_vocab_size=2,
             initializer_range=0.02)


def gather_index(txt_lens, num_bbs, batch_size, max_len, out_size):
    """UNITER's data/data.py:get_gather_index."""
    gi = torch.arange(0, out_size, dtype=torch.long).unsqueeze(0).repeat(batch_size, 1)
    for i, (tl, nbb) in enumerate(zip(txt_lens, num_bbs)):
        gi.data[i, tl:tl + nbb] = torch.arange(max_len, max_len + nbb, dtype=torch.long).data
    return gi


def make_batch(g, txt_lens, nbbs, vocab, img_type_ids=None):
    b = len(txt_lens)
    t, n = max(txt_lens), max(nbbs)
    ids = torch.zeros(b, t, dtype=torch.long)
    for i, tl in enumerate(txt_lens):
        ids[i, :tl] = torch.randint(1, vocab, (tl,), generator=g)
    feat = torch.zeros(b, n, IMG_DIM)
    pos = torch.zeros(b, n, 7)
    for i, nb in enumerate(nbbs):
        feat[i, :nb] = torch.rand(nb, IMG_DIM, generator=g) * 2
        pos[i, :nb] = torch.rand(nb, 7, generator=g)
    lens = [tl + nb for tl, nb in zip(txt_lens, nbbs)]
    out_size = max(lens)
    masks = torch.zeros(b, out_size, dtype=torch.long)
    for i, l in enumerate(lens):
        masks[i, :l] = 1
    batch = {'input_ids': ids, 'position_ids': torch.arange(t, dtype=torch.long).unsqueeze(0),
             'img_feat': feat, 'img_pos_feat': pos, 'attn_masks': masks,
             'gather_index': gather_index(txt_lens, nbbs, b, t, out_size)}
    if img_type_ids is not None:
        types = torch.zeros(b, n, dtype=torch.long)
        for i, nb in enumerate(nbbs):
            types[i, :nb] = img_type_ids[i]
        batch['img_type_ids'] = types
    return batch


def heads(out_dir, task, variant):
    torch.manual_seed(1234)
    g = torch.Generator().manual_seed(99)
    c = Cfg(SMALL)
    if task == 'nlvr2':
        model = {'paired': Paired, 'triplet': Triplet, 'paired-attn': PairedAttn}[variant](c)
        model.init_type_embedding()
        if variant == 'triplet':  # rows: [txt, img0, img1] per example as data/nlvr2.py's triplet
            batch = make_batch(g, [5, 9, 7], [4, 6, 3], c.vocab_size)
            batch['img_type_ids'] = None
            n_ex = 3
        else:  # paired: rows 2k, 2k+1 share the text; images typed 1 / 2
            tls = [6, 6, 9, 9, 4, 4]
            batch = make_batch(g, tls, [5, 3, 7, 2, 6, 6], c.vocab_size, [1, 2, 1, 2, 1, 2])
            n_ex = 3
        batch['targets'] = torch.tensor([1, 0, 1][:n_ex], dtype=torch.long)
    else:
        n_ans = 3 if task == 've' else 11
        model = Vqa(c, n_ans)
        batch = make_batch(g, [7, 4, 10, 5], [5, 8, 3, 6], c.vocab_size)
        t = torch.rand(4, n_ans, generator=g) * (torch.rand(4, n_ans, generator=g) < 0.3)
        if task == 've':
            t = F.one_hot(torch.tensor([0, 2, 1, 1]), 3).float()
        batch['targets'] = t
    # Perturb every parameter so zero biases and unit LayerNorms are tested too.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    model.eval()  # no dropout: the backward pass is compared, not the random masks
    # UNITER_REF_AUTOCAST=bf16: the forward under torch.autocast("cpu", bfloat16).
    amp = os.environ.get('UNITER_REF_AUTOCAST', '') == 'bf16'
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp):
        scores = model.scores(batch)
        loss = model.loss(scores, batch)
        train_loss = model.train_loss(loss, batch)
    train_loss.backward()
    scores, loss, train_loss = scores.detach(), loss.detach(), train_loss.detach()
    io = {k: v.clone() for k, v in model.state_dict().items()}
    for k, p in model.named_parameters():
        if p.grad is not None:
            io['grad.' + k] = p.grad.clone()
    for k, v in batch.items():
        if v is not None:
            io['batch.' + k] = v
    io['out.scores'] = scores
    io['out.loss'] = loss
    io['out.train_loss'] = train_loss.reshape(1)
    torch.save(io, f'{out_dir}/io.pt')
    with open(f'{out_dir}/model.json', 'w') as f:
        json.dump(SMALL, f)
    return model


def bert(out_dir):
    """transformers' BertModel on random weights, text only, with padding."""
    from transformers import BertConfig, BertModel
    torch.manual_seed(4321)
    cfg = dict(SMALL, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertModel(BertConfig(**cfg)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    g = torch.Generator().manual_seed(5)
    lens = [9, 4, 12]
    ids = torch.zeros(3, 12, dtype=torch.long)
    mask = torch.zeros(3, 12, dtype=torch.long)
    types = torch.zeros(3, 12, dtype=torch.long)
    for i, l in enumerate(lens):
        ids[i, :l] = torch.randint(1, cfg['vocab_size'], (l,), generator=g)
        mask[i, :l] = 1
        types[i, l // 2:l] = 1
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, token_type_ids=types)
    io = {k: v.clone() for k, v in model.state_dict().items() if k != 'embeddings.position_ids'}
    io.update({'batch.input_ids': ids, 'batch.attn_masks': mask, 'batch.txt_type_ids': types,
               'batch.position_ids': torch.arange(12).unsqueeze(0),
               'out.sequence': out.last_hidden_state, 'out.pooled': out.pooler_output})
    torch.save(io, f'{out_dir}/io.pt')
    with open(f'{out_dir}/model.json', 'w') as f:
        json.dump(cfg, f)


if __name__ == '__main__':
    if sys.argv[1] == 'heads':
        heads(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else '')
    elif sys.argv[1] == 'bert':
        bert(sys.argv[2])
    else:
        sys.exit(f'unknown mode {sys.argv[1]}')

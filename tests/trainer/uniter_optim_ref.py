"""Reference side of the trainer optimizer tests: UNITER's AdamW (optim/adamw.py),
its parameter groups (optim/misc.py, train_vqa.py:build_optimizer), get_lr_sched
(optim/sched.py) and torch's own clip_grad_norm_, restated over torch 1.13.

  uniter_optim_ref.py CASE.json OUT.npz
CASE: names, shapes, steps, seed, lr, warmup, total, betas, wd, grad_norm,
head_keys (list; empty = optim/misc.py's two groups), lr_mul, none_steps
({name: [steps whose grad is None]}). OUT holds the initial params (init/<name>),
the grads (grad/<step>/<name>, absent = None), the params after every step
(after/<step>/<name>), the final state (state/<name>/exp_avg...), the grad norms
(norms) and the lrs (lrs); stdout: the group member names as JSON.
"""
import json
import math
import sys

import numpy as np
import torch
from torch.nn.utils import clip_grad_norm_
from torch.optim import Optimizer


class AdamW(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, correct_bias=True):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      correct_bias=correct_bias))

    def step(self):
        for group in self.param_groups:
            for p in group['params']:
                if p.grad is None:
                    continue
                grad = p.grad.data
                state = self.state[p]
                if len(state) == 0:
                    state['step'] = 0
                    state['exp_avg'] = torch.zeros_like(p.data)
                    state['exp_avg_sq'] = torch.zeros_like(p.data)
                exp_avg, exp_avg_sq = state['exp_avg'], state['exp_avg_sq']
                beta1, beta2 = group['betas']
                state['step'] += 1
                exp_avg.mul_(beta1).add_(grad, alpha=1.0 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                denom = exp_avg_sq.sqrt().add_(group['eps'])
                step_size = group['lr']
                if group['correct_bias']:
                    bias_correction1 = 1.0 - beta1 ** state['step']
                    bias_correction2 = 1.0 - beta2 ** state['step']
                    step_size = step_size * math.sqrt(bias_correction2) / bias_correction1
                p.data.addcdiv_(exp_avg, denom, value=-step_size)
                if group['weight_decay'] > 0.0:
                    p.data.add_(p.data, alpha=-group['lr'] * group['weight_decay'])


def warmup_linear(step, warmup_step, tot_step):
    if step < warmup_step:
        return step / warmup_step
    return max(0, (tot_step - step) / (tot_step - warmup_step))


def get_lr_sched(global_step, lr, warmup, total):
    lr_this_step = lr * warmup_linear(global_step, warmup, total)
    if lr_this_step <= 0:
        lr_this_step = 1e-8
    return lr_this_step


def build_groups(named, head_keys, wd, lr):
    no_decay = ['bias', 'LayerNorm.bias', 'LayerNorm.weight']
    if head_keys:
        top = [(n, p) for n, p in named if any(k in n for k in head_keys)]
        rest = [(n, p) for n, p in named if not any(k in n for k in head_keys)]
        parts = [(top, wd, lr), (top, 0.0, lr), (rest, wd, None), (rest, 0.0, None)]
    else:
        parts = [(named, wd, None), (named, 0.0, None)]
    groups, names = [], []
    for i, (ps, w, glr) in enumerate(parts):
        decay = i % 2 == 0
        chosen = [(n, p) for n, p in ps if (not any(nd in n for nd in no_decay)) == decay]
        g = {'params': [p for _, p in chosen], 'weight_decay': w}
        if glr is not None:
            g['lr'] = glr
        groups.append(g)
        names.append([n for n, _ in chosen])
    return groups, names


def main(case_path, out_path):
    c = json.load(open(case_path))
    rng = np.random.RandomState(c['seed'])
    out = {}
    named = []
    for n, shape in zip(c['names'], c['shapes']):
        init = rng.randn(*shape).astype(np.float32)
        out[f'init/{n}'] = init
        named.append((n, torch.nn.Parameter(torch.from_numpy(init.copy()))))
    groups, names = build_groups(named, c['head_keys'], c['wd'], c['lr'])
    opt = AdamW(groups, lr=c['lr'], betas=tuple(c['betas']))
    norms, lrs = [], []
    for step in range(c['steps']):
        for n, p in named:
            if step in c['none_steps'].get(n, []):
                p.grad = None
                continue
            g = (rng.randn(*p.shape) * c['grad_scale'][step]).astype(np.float32)
            out[f'grad/{step}/{n}'] = g
            p.grad = torch.from_numpy(g.copy())
        global_step = step + 1
        lr = get_lr_sched(global_step, c['lr'], c['warmup'], c['total'])
        for i, group in enumerate(opt.param_groups):
            group['lr'] = lr * c['lr_mul'] if (c['head_keys'] and i < 2) else lr
        lrs.append(lr)
        if c['grad_norm'] != -1:
            norms.append(float(clip_grad_norm_([p for _, p in named], c['grad_norm'])))
        opt.step()
        for n, p in named:
            out[f'after/{step}/{n}'] = p.detach().numpy().copy()
    for n, p in named:
        if p in opt.state:
            s = opt.state[p]
            out[f'state/{n}/exp_avg'] = s['exp_avg'].numpy()
            out[f'state/{n}/exp_avg_sq'] = s['exp_avg_sq'].numpy()
            out[f'state/{n}/step'] = np.array(s['step'], dtype=np.int64)
    out['norms'] = np.array(norms, dtype=np.float64)
    out['lrs'] = np.array(lrs, dtype=np.float64)
    np.savez(out_path, **out)
    print(json.dumps(names))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])

"""Peer of bench/pretrain_step_bench: one pretraining step of the PyTorch
restatement of UNITER's model/pretrain.py (tests/trainer/pretrain_ref.py's
Pretrain, its forward(batch, task) and pretrain.py's loss reduction) with
UNITER's AdamW and parameter groups (tests/trainer/uniter_optim_ref.py) and
clip_grad_norm_, eagerly as pretrain.py runs it, on the checkpoint and batch the
bench wrote. Prints one JSON line: per-step ms, median, eval loss, VmHWM.

  pretrain_step_peer.py --task mlm|mrfr|mrc|mrc-kl|itm --case DIR --threads N --steps S
                        --warmup W --device cpu|cuda --amp none|fp16|bf16
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'trainer'))
import pretrain_ref  # noqa: E402
import uniter_optim_ref  # noqa: E402
from trainer_step_peer import vmhwm_mib  # noqa: E402

LR, BETAS, WD, GRAD_NORM, OT_LAMBDA = 5e-5, (0.9, 0.98), 0.01, 5.0, 0.1  # pretrain-indomain-base-8gpu.json


def main():
    ap = argparse.ArgumentParser()
    for k, d in [('task', 'mlm'), ('case', ''), ('threads', '1'), ('steps', '5'), ('warmup', '2'),
                 ('device', 'cpu'), ('amp', 'none'), ('intra_op', '0')]:
        ap.add_argument('--' + k, default=d)
    a = ap.parse_args()
    # --intra-op K: torch's own pool K threads, OpenBLAS (OPENBLAS_NUM_THREADS, set by the bench) --threads
    torch.set_num_threads(int(a.intra_op) or int(a.threads))
    device = torch.device(a.device)
    model = pretrain_ref.Pretrain(pretrain_ref.Cfg(json.load(open(os.path.join(a.case, 'model.json')))))
    model.load_state_dict(torch.load(os.path.join(a.case, 'model.pt')), strict=True)
    model.to(device)
    batch = {k: v.to(device) for k, v in torch.load(os.path.join(a.case, 'batch.pt')).items()}
    amp = {'none': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}[a.amp]
    scaler = torch.cuda.amp.GradScaler() if a.amp == 'fp16' else None

    def step_loss():
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss, ot = model(batch, a.task)
            return pretrain_ref.train_loss(a.task, loss, ot, OT_LAMBDA)

    out = {}
    model.eval()
    with torch.no_grad():
        out['eval_loss'] = float(step_loss())
    model.train()
    named = list(model.named_parameters())
    groups, _ = uniter_optim_ref.build_groups(named, [], WD, LR)
    opt = uniter_optim_ref.AdamW(groups, lr=LR, betas=BETAS)
    params = [p for _, p in named]
    times, cpu = [], []
    for i in range(int(a.warmup) + int(a.steps)):
        t0, c0 = time.perf_counter(), time.process_time()
        loss = step_loss()
        (scaler.scale(loss) if scaler else loss).backward()
        for g in opt.param_groups:
            g['lr'] = LR
        if scaler:
            scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, GRAD_NORM)
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        opt.zero_grad(set_to_none=False)  # torch 1.1's zero_grad, as UNITER ran it
        out['loss'] = loss.item()
        if i >= int(a.warmup):
            times.append((time.perf_counter() - t0) * 1000.0)
            cpu.append((time.process_time() - c0) * 1000.0)
    out.update(ms=times, median_ms=sorted(times)[len(times) // 2], cpu_ms=sorted(cpu)[len(cpu) // 2],
               vmhwm_mib=vmhwm_mib(), rows=int(batch['input_ids'].size(0)))
    print(json.dumps(out))


if __name__ == '__main__':
    main()

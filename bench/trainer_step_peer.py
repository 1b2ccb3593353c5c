"""Peer of bench/trainer_step_bench: one training step of the PyTorch
restatement of UNITER's model (tests/trainer/uniter_ref.py) with UNITER's AdamW,
parameter groups and clip_grad_norm_ (tests/trainer/uniter_optim_ref.py), run
eagerly as train_nlvr2.py / train_vqa.py do, on the checkpoint and batch the
bench wrote. Prints one JSON line: per-step ms, median, eval loss, VmHWM.

  trainer_step_peer.py --task nlvr2|vqa --case DIR --threads N --steps S --warmup W
                       --device cpu|cuda --amp none|fp16|bf16
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'trainer'))
import uniter_ref  # noqa: E402
import uniter_optim_ref  # noqa: E402

LR, BETAS, WD, GRAD_NORM, LR_MUL = 3e-5, (0.9, 0.98), 0.01, 2.0, 1.0  # TrainOptions' defaults


def vmhwm_mib():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024.0
    return -1.0


def build(task, case):
    c = uniter_ref.Cfg(json.load(open(os.path.join(case, 'model.json'))))
    if task == 'nlvr2':
        model = uniter_ref.PairedAttn(c)
        model.init_type_embedding()
    else:
        model = uniter_ref.Vqa(c, 3129)
    model.load_state_dict(torch.load(os.path.join(case, 'model.pt')), strict=True)
    return model


def main():
    ap = argparse.ArgumentParser()
    for k, d in [('task', 'nlvr2'), ('case', ''), ('threads', '1'), ('steps', '5'), ('warmup', '2'),
                 ('device', 'cpu'), ('amp', 'none'), ('profile', ''), ('intra_op', '0')]:
        ap.add_argument('--' + k, default=d)
    a = ap.parse_args()
    # --intra-op K: torch's own pool K threads, OpenBLAS (OPENBLAS_NUM_THREADS, set by the bench) --threads
    torch.set_num_threads(int(a.intra_op) or int(a.threads))
    device = torch.device(a.device)
    model = build(a.task, a.case).to(device)
    batch = {k: v.to(device) for k, v in torch.load(os.path.join(a.case, 'batch.pt')).items()}
    if a.task != 'nlvr2':
        batch.setdefault('img_type_ids', None)
    amp = {'none': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}[a.amp]
    scaler = torch.cuda.amp.GradScaler() if a.amp == 'fp16' else None

    def autocast():
        return torch.autocast(device.type, dtype=amp, enabled=amp is not None)

    out = {}
    model.eval()
    with torch.no_grad(), autocast():
        out['eval_loss'] = float(model.train_loss(model.loss(model.scores(batch), batch), batch))
    model.train()
    named = list(model.named_parameters())
    head_keys = ['vqa_output'] if a.task == 'vqa' else []
    groups, _ = uniter_optim_ref.build_groups(named, head_keys, WD, LR)
    opt = uniter_optim_ref.AdamW(groups, lr=LR, betas=BETAS)
    params = [p for _, p in named]
    times, cpu = [], []
    prof = None
    for i in range(int(a.warmup) + int(a.steps)):
        if i == int(a.warmup) and a.profile:
            prof = torch.autograd.profiler.profile()
            prof.__enter__()
        t0, c0 = time.perf_counter(), time.process_time()
        with autocast():
            loss = model.train_loss(model.loss(model.scores(batch), batch), batch)
        if scaler:
            scaler.scale(loss).backward()
        else:
            loss.backward()
        out['loss'] = loss.item()
        for j, g in enumerate(opt.param_groups):
            g['lr'] = LR * LR_MUL if (head_keys and j < 2) else LR
        if scaler:
            scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, GRAD_NORM)
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        opt.zero_grad(set_to_none=False)  # torch 1.1's zero_grad, as UNITER ran it
        if device.type == 'cuda':
            torch.cuda.synchronize()
        if i >= int(a.warmup):
            times.append((time.perf_counter() - t0) * 1000.0)
            cpu.append((time.process_time() - c0) * 1000.0)
    if prof:
        prof.__exit__(None, None, None)
        prof.export_chrome_trace(a.profile)
    out.update(ms=times, median_ms=sorted(times)[len(times) // 2], cpu_ms=sorted(cpu)[len(cpu) // 2], vmhwm_mib=vmhwm_mib())  # as the bench's Median
    print(json.dumps(out))


if __name__ == '__main__':
    main()

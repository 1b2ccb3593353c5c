"""PyTorch's own dynamic loss scaler (torch.amp.GradScaler on the CPU, torch
>= 2.3: the venv-cuda torch) on a fixed sequence of gradients, as the
reference for the trainer's LossScaler.

Usage: amp_ref.py scaler OUT.pt
The gradient sequence: seeded N(0, 0.1) [14, 5] with overflow injected: inf
(step 2), nan (step 3), 1e36 (finite, inf once scaled: step 7), -inf (step
11). Scaler options: init_scale 1024, growth 2, backoff 0.5, interval 3.
Per step: loss = (p * g).sum(); scaler.scale(loss).backward();
scaler.unscale_(opt); scaler.step(opt) (SGD, lr 1); scaler.update();
opt.zero_grad(). OUT.pt: {"unscaled": the grads after unscale_ [steps, n],
"skipped": uint8 [steps] (the step left p unchanged), "scale_after": float32
[steps], "p": the final parameter, "p0": the first, "grads", and the options
as 0-d tensors}.
"""
import sys

import torch


def scaler_run(out):
    g = torch.Generator().manual_seed(7)
    grads = torch.randn(14, 5, generator=g) * 0.1
    grads[2, 1] = float("inf")
    grads[3, 0] = float("nan")
    grads[7, 4] = 1e36
    grads[11, 2] = float("-inf")
    d = {"init_scale": torch.tensor(1024.0), "growth_factor": torch.tensor(2.0),
         "backoff_factor": torch.tensor(0.5), "growth_interval": torch.tensor(3)}
    steps, n = grads.shape
    scaler = torch.amp.GradScaler("cpu", init_scale=float(d["init_scale"]),
                                  growth_factor=float(d["growth_factor"]),
                                  backoff_factor=float(d["backoff_factor"]),
                                  growth_interval=int(d["growth_interval"]))
    p = torch.nn.Parameter(torch.linspace(-1.0, 1.0, n))
    p0 = p.detach().clone()
    opt = torch.optim.SGD([p], lr=1.0)
    unscaled = torch.zeros(steps, n)
    skipped = torch.zeros(steps, dtype=torch.uint8)
    scale_after = torch.zeros(steps)
    for i in range(steps):
        loss = (p * grads[i]).sum()
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        unscaled[i] = p.grad.detach()
        before = p.detach().clone()
        scaler.step(opt)
        skipped[i] = int(torch.equal(before, p.detach()))
        scaler.update()
        scale_after[i] = scaler.get_scale()
        opt.zero_grad(set_to_none=False)
    torch.save(dict(d, unscaled=unscaled, skipped=skipped, scale_after=scale_after,
                    p=p.detach().clone(), p0=p0, grads=grads), out)


if __name__ == "__main__":
    if sys.argv[1] == "scaler":
        scaler_run(sys.argv[2])
    else:
        sys.exit("unknown mode " + sys.argv[1])

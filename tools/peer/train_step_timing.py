"""What the Python training peers share: timing optimizer steps the way the
C++ trainers take them (grads set to None, autocast for fp16/bf16, a
GradScaler for fp16 only), each step ended by a device sync."""
import time

import torch


def time_train_steps(loss_fn, batches, optimizer, precision, device, warmup, steps):
    """Seconds of each of `steps` timed steps, after `warmup` untimed ones.
    Step i minimises loss_fn(*batches[i % len(batches)])."""
    device = torch.device(device)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)

    def step(i):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = loss_fn(*batches[i % len(batches)])
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if device.type == "cuda":
            torch.cuda.synchronize()

    for i in range(warmup):
        step(i)
    seconds = []
    for i in range(steps):
        start = time.perf_counter()
        step(i)
        seconds.append(time.perf_counter() - start)
    return seconds

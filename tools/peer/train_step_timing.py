"""What the Python training peers share: timing optimizer steps the way the
C++ trainers take them (grads set to None, autocast for fp16/bf16, a
GradScaler for fp16 only), each step ended by a device sync; and the choice
of torch.optim implementation (--implementation)."""
import time

import torch


def time_train_steps(loss_fn, batches, optimizer, precision, device, warmup, steps, trace=None, trace_steps=5):
    """(seconds of each of `steps` timed steps after `warmup` untimed ones, how
    many of the timed steps the GradScaler skipped). Step i minimises
    loss_fn(*batches[i % len(batches)]). A skipped step (inf/NaN gradients in
    fp16) does no optimizer work, so its time is not a training step's. With
    `trace`, `trace_steps` more steps run under torch.profiler after the timed
    ones and their Chrome trace is written there (as the C++ binaries' --trace)."""
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
    skipped = 0
    scale = scaler.get_scale()
    for i in range(steps):
        start = time.perf_counter()
        step(i)
        seconds.append(time.perf_counter() - start)
        # The scale drops only on a skipped step; reading it syncs, so it is read off the clock.
        new_scale = scaler.get_scale()
        skipped += new_scale < scale
        scale = new_scale
    if trace:
        activities = [torch.profiler.ProfilerActivity.CPU]
        if device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        with torch.profiler.profile(activities=activities) as profile:
            for i in range(trace_steps):
                step(warmup + steps + i)
        profile.export_chrome_trace(trace)
    return seconds, skipped


IMPLEMENTATIONS = ["default", "foreach", "fused"]


def optimizer_implementation(name, device):
    """torch.optim keyword arguments for --implementation NAME, and the label the
    peers print: "default" resolves as torch.optim does (foreach when every
    tensor is on a GPU, else a loop over the parameters)."""
    kwargs = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}[name]
    if name != "default":
        return kwargs, name
    return kwargs, "default (foreach)" if torch.device(device).type == "cuda" else "default (loop)"

"""What the Python training peers share: timing optimizer steps the way the
C++ trainers take them (grads set to None, autocast for fp16/bf16, a
GradScaler for fp16 only), each step ended by a device sync, alone or two
trainers step by step; and the choice of torch.optim implementation
(--implementation)."""
import time

import torch


class TrainStep:
    """step(i): one optimizer step minimising loss_fn(*batches[i % len(batches)])
    (grads set to None, autocast for fp16/bf16, a GradScaler for fp16), ended by
    a device sync. count_skipped(), called after each timed step, adds to
    skipped_steps the steps the GradScaler skipped (inf/NaN gradients in fp16:
    no optimizer work, so not a training step's time)."""

    def __init__(self, loss_fn, batches, optimizer, precision, device):
        self.loss_fn, self.batches, self.optimizer = loss_fn, batches, optimizer
        self.device = torch.device(device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=precision == "fp16")
        self.dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
        self.scale = None
        self.skipped_steps = 0

    def __call__(self, i):
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            loss = self.loss_fn(*self.batches[i % len(self.batches)])
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def count_skipped(self):
        """Call after each timed step: the scale drops only on a skipped step.
        Reading it syncs, so call it off the clock."""
        new_scale = self.scaler.get_scale()
        if self.scale is not None and new_scale < self.scale:
            self.skipped_steps += 1
        self.scale = new_scale


def percentile(values, q):
    """The q-quantile (0 <= q <= 1) of `values`, interpolating linearly between
    order statistics as numpy.percentile's default and common/timing.cc do."""
    s = sorted(values)
    position = (len(s) - 1) * q
    low = int(position)
    high = min(low + 1, len(s) - 1)
    return s[low] + (s[high] - s[low]) * (position - low)


def time_train_steps(loss_fn, batches, optimizer, precision, device, warmup, steps, trace=None, trace_steps=5):
    """(seconds of each of `steps` timed steps after `warmup` untimed ones, how
    many of the timed steps the GradScaler skipped); see TrainStep. With
    `trace`, `trace_steps` more steps run under torch.profiler after the timed
    ones and their Chrome trace is written there (as the C++ binaries' --trace)."""
    step = TrainStep(loss_fn, batches, optimizer, precision, device)
    for i in range(warmup):
        step(i)
    step.count_skipped()
    seconds = []
    for i in range(steps):
        start = time.perf_counter()
        step(i)
        seconds.append(time.perf_counter() - start)
        step.count_skipped()
    if trace:
        activities = [torch.profiler.ProfilerActivity.CPU]
        if step.device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        with torch.profiler.profile(activities=activities) as profile:
            for i in range(trace_steps):
                step(warmup + steps + i)
        profile.export_chrome_trace(trace)
    return seconds, step.skipped_steps


def time_paired_steps(first, second, warmup, steps):
    """Alternates the TrainSteps `first` and `second`, one step each, so that
    both see the same machine load, swapping their order every pair so that
    neither always follows the other; returns each one's seconds per timed step."""
    for i in range(warmup):
        first(i)
        second(i)
    first.count_skipped()
    second.count_skipped()
    seconds = ([], [])
    for i in range(steps):
        for which in ((0, 1) if i % 2 == 0 else (1, 0)):
            step = (first, second)[which]
            start = time.perf_counter()
            step(i)
            seconds[which].append(time.perf_counter() - start)
            step.count_skipped()
    return seconds


IMPLEMENTATIONS = ["default", "foreach", "fused"]


def optimizer_implementation(name, device):
    """torch.optim keyword arguments for --implementation NAME, and the label the
    peers print: "default" resolves as torch.optim does (foreach when every
    tensor is on a GPU, else a loop over the parameters)."""
    kwargs = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}[name]
    if name != "default":
        return kwargs, name
    return kwargs, "default (foreach)" if torch.device(device).type == "cuda" else "default (loop)"

"""The global backend switches a Python peer ran with, under the names the
C++ binaries' records use (common/device.h DescribeRuntime), so that
tools/gpu_check_summary.py can tell when the two sides did not do the same
arithmetic (TF32) or the same algorithm search (cuDNN benchmark)."""
import torch


def backend_settings():
    """{"cudnn_benchmark", "allow_tf32_cudnn", "allow_tf32_cublas"} as in effect now."""
    return {"cudnn_benchmark": torch.backends.cudnn.benchmark,
            "allow_tf32_cudnn": torch.backends.cudnn.allow_tf32,
            "allow_tf32_cublas": torch.backends.cuda.matmul.allow_tf32}

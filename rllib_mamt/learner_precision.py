"""The arithmetic precision of the learner's forward passes (``learner_precision``).

``"float32"`` (default): every pass in fp32, as the paper and MAAC train.

``"bfloat16"``: the forward passes of a learner update (critic, target critic,
actors, target/old actors, Eq. 5's counterfactual values, opponent models,
TRD-Net) run under ``torch.autocast`` with bfloat16 on the learner's own device
type (CPU or CUDA), i.e. matrix products in bf16 and element-wise work in the
dtype they produce. Parameters, gradients, losses (network outputs are cast
back to fp32 before any loss is formed) and optimiser state stay fp32: mixed
precision training (Micikevicius et al., 2018, "Mixed Precision Training").
bf16 keeps fp32's 8-bit exponent, so, unlike fp16, it needs no loss scaling
(Kalamkar et al., 2019, "A Study of BFLOAT16 for Deep Learning Training").
Why offer it: most of an update's time is matrix products, and CPUs with
bf16 matrix instructions (AVX512-BF16 / AMX) multiply bf16 faster than fp32
(on one thread of this project's machine ~2.1x the fp32 matmul throughput,
and a Rover-Tower MAAC update ~1.5x faster; BENCHMARKS.md). It changes the
numerics (bf16 keeps ~3 significant digits), so it is opt-in until the
learning A/B in BENCHMARKS.md shows learning unchanged.
"""

import contextlib

import torch

LEARNER_PRECISIONS = ("float32", "bfloat16")
"""Allowed values of ``MAMTConfig.training(learner_precision=...)``."""


def forward_precision(precision: str, device: torch.device):
    """Context manager for the forward passes of one learner update on ``device``.

    Raises:
        ValueError: For a ``precision`` not in :data:`LEARNER_PRECISIONS`, or
            ``"bfloat16"`` on a CUDA device without bf16 support.
    """
    if precision == "float32":
        return contextlib.nullcontext()
    if precision != "bfloat16":
        raise ValueError(
            f"learner_precision = {precision!r} is invalid; allowed: "
            + " | ".join(repr(option) for option in LEARNER_PRECISIONS) + "."
        )
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(
            f"learner_precision = 'bfloat16' is invalid on {device} (no bf16 "
            "support); allowed there: 'float32'."
        )
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def full_precision(device: torch.device):
    """Context manager that turns autocast off on ``device``'s type (for the
    backward passes taken inside an update; PyTorch advises against running
    backward under autocast)."""
    return torch.autocast(device_type=device.type, enabled=False)

"""Subnormal floats are flushed to zero in a learner's thread.

With two agents, every agent's attention in the centralized critic (the
MAAC critic trained by the paper's Eq. 9, ``AttentionCritic.attend``) ranges over
one other agent, so its softmax weight is 1 whatever the logits. The key and
query projections then get no gradient from the values; MAAC's attention-logit
penalty and the critic's L2 weight decay (``critic_weight_decay``) only shrink
them, geometrically, until they are subnormal
floats (magnitude below 1.2e-38). Weights that only meet an input that is
always 0 go the same way. x86 CPUs handle subnormal operands in microcode:
on Spread (2 agents) a learner update ran ~6x slower on an Intel Xeon once
16,287 of the 16,384 key weights had gone subnormal (BENCHMARKS.md, "Subnormal
weights").

Flushing subnormals to zero (the CPU's FTZ and DAZ modes, through
``torch.set_flush_denormal``) changes no value above 1.2e-38. The mode belongs
to a thread, and threads inherit it when they are created, so the learner sets
it when it is built (before its intra-op threads exist) and again before every
update (in case the update runs on another thread). For a local learner this
sets the mode of the driver's main thread.
"""

import torch


def flush_subnormal_floats() -> bool:
    """Turns on flush-to-zero for this thread; False where the CPU has no such
    mode (torch supports it on x86 with SSE3 and on arm64)."""
    return torch.set_flush_denormal(True)


SMALLEST_NORMAL_FLOAT32_BITS = 0x00800000


def subnormal_count(tensor: torch.Tensor) -> int:
    """How many entries of a float32 tensor are subnormal, read from their bits:
    while flushing is on, a comparison reads a subnormal as 0."""
    if tensor.dtype != torch.float32:
        raise ValueError(f"subnormal_count takes float32 tensors, not {tensor.dtype}")
    magnitude = tensor.detach().contiguous().view(torch.int32) & 0x7FFFFFFF
    return int(((magnitude > 0) & (magnitude < SMALLEST_NORMAL_FLOAT32_BITS)).sum())

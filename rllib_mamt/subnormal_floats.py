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
it when it is built and again before every update (in case the update runs on
another thread). For a local learner this sets the mode of the driver's main
thread. Torch's intra-op threads started before that keep their mode: a local
learner with several threads, in a driver that ran a parallel torch operation
before building the algorithm, would do part of every product unflushed. The
learner measures this at build (:func:`unflushed_intra_op_share`) and warns.
"""

import logging

import torch

logger = logging.getLogger(__name__)


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


# at::parallel_for hands each intra-op thread at least this many elements
# (at::internal::GRAIN_SIZE), so a product of threads x this many is split
# across all of them.
PARALLEL_GRAIN_SIZE = 32768


def unflushed_intra_op_share() -> float:
    """The share of a parallel elementwise product that torch's intra-op
    threads computed with subnormal floats kept: 0 when every thread flushes,
    k / n when k of n threads were started before flushing was turned on.

    The product is the smallest subnormal (set from its bits) times 2**40,
    which is 1.5e-33 where subnormal inputs are kept and 0 where they are
    flushed.
    """
    elements = 2 * PARALLEL_GRAIN_SIZE * torch.get_num_threads()
    smallest_subnormals = torch.ones(elements, dtype=torch.int32).view(torch.float32)
    return float(((smallest_subnormals * 2.0**40) != 0).float().mean())


def warn_if_intra_op_threads_keep_subnormals() -> float:
    """Logs a one-line warning when some of torch's intra-op threads keep
    subnormal floats (see the module docstring) and returns their share."""
    share = unflushed_intra_op_share()
    if share > 0:
        logger.warning(
            "%.0f%% of this learner's parallel torch work keeps subnormal floats "
            "(~200x slower on some x86 CPUs): torch's intra-op threads (%d) were started "
            "before the learner turned on flush-to-zero; build the algorithm "
            "before other torch work in this process, or give the learner its "
            "own process (num_learners=1).",
            100 * share, torch.get_num_threads())
    return share

"""In-place mean of tensors across data-parallel learner processes."""

from typing import Sequence

import torch
import torch.distributed as dist


def world_size() -> int:
    """Number of learner processes in the torch process group (1 without one)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


@torch.no_grad()
def average_across_processes_(tensors: Sequence[torch.Tensor]) -> None:
    """Replaces each tensor by its mean over all learner processes, with one
    all-reduce of their concatenation; a no-op in a single process."""
    size = world_size()
    if size < 2 or not tensors:
        return
    flat = torch.cat([tensor.reshape(-1) for tensor in tensors])
    dist.all_reduce(flat)
    flat.div_(size)
    offset = 0
    for tensor in tensors:
        count = tensor.numel()
        tensor.copy_(flat[offset : offset + count].view_as(tensor))
        offset += count

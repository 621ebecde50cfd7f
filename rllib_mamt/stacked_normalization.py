"""Several agents' observation normalisations applied to one stacked batch.

:class:`~rllib_mamt.stacked_actors.StackedActors` evaluates a group of G
same-shaped actors on a ``(G, num_envs, obs_size)`` batch; before the first
layer, agent i's rows must pass through agent i's own normalisation module
exactly as its RLModule forward (in eval mode) would apply it. The kinds
batched here:

* ``nn.Identity``: nothing to do;
* :class:`~rllib_mamt.modules.actor.InputNormalization` (MAAC's): with its
  running statistics, (x - mean_i) / sqrt(var_i + eps_i);
* ``nn.LayerNorm`` over the last axis (MAPPO's feature normalisation): every
  row is normalised by its own mean and variance, which needs no per-agent
  state, then scaled and shifted by agent i's elementwise weight and bias.

Per-agent tensors are stacked as ``(G, 1, obs_size)`` so they broadcast over
the envs; they are copies, re-made at every weight refresh.
"""

from typing import Callable, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from rllib_mamt.modules.actor import InputNormalization

StackedNormalization = Callable[[torch.Tensor], torch.Tensor]


def normalization_signature(module: nn.Module) -> Optional[tuple]:
    """What two agents' normalisations must share to be batched together
    (hashable), or None if this module's kind cannot be batched.

    Only the exact classes above qualify: a subclass may change the forward.
    """
    kind = type(module)
    if kind is nn.Identity:
        return ("identity",)
    if kind is InputNormalization:
        return ("running statistics",)
    if kind is nn.LayerNorm and len(module.normalized_shape) == 1:
        return ("layer norm", tuple(module.normalized_shape), module.eps,
                module.weight is not None, module.bias is not None)
    return None


def _stack_rows(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """``(G, 1, size)`` copy of G ``(size,)`` tensors."""
    return torch.stack([tensor.detach() for tensor in tensors]).unsqueeze(1)


def _running_statistics(modules: Sequence[InputNormalization]) -> StackedNormalization:
    shift = _stack_rows([module.running_mean for module in modules])
    scale = _stack_rows(
        [torch.rsqrt(module.running_var + module.eps) for module in modules]
    )
    return lambda inputs: (inputs - shift) * scale


def _layer_norm(modules: Sequence[nn.LayerNorm]) -> StackedNormalization:
    first = modules[0]
    shape, eps = tuple(first.normalized_shape), first.eps
    weight = None if first.weight is None else _stack_rows([m.weight for m in modules])
    bias = None if first.bias is None else _stack_rows([m.bias for m in modules])

    def apply(inputs: torch.Tensor) -> torch.Tensor:
        normalized = F.layer_norm(inputs, shape, None, None, eps)
        if weight is not None:
            normalized = normalized * weight
        if bias is not None:
            normalized = normalized + bias
        return normalized

    return apply


def stack_normalizations(modules: Sequence[nn.Module]) -> Optional[StackedNormalization]:
    """A function mapping ``(G, num_envs, obs_size)`` inputs to their
    normalised values, row block g by ``modules[g]``, from the modules'
    current state; None for identities. The modules must share one
    :func:`normalization_signature` (not None)."""
    signature = normalization_signature(modules[0])
    if signature is None or any(
        normalization_signature(module) != signature for module in modules
    ):
        raise ValueError(
            f"stack_normalizations: modules {[type(m).__name__ for m in modules]} "
            "cannot be batched together; allowed: all nn.Identity, all "
            "InputNormalization, or nn.LayerNorm over the last axis with equal "
            "size, eps and affine settings."
        )
    with torch.no_grad():
        if signature[0] == "identity":
            return None
        if signature[0] == "running statistics":
            return _running_statistics(modules)
        return _layer_norm(modules)

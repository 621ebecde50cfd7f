"""Pure tensor functions of MADDPG's discrete-action update.

The discrete-action MADDPG of the reference code (maddpg-pytorch, as in Lowe
et al., 2017, Appendix) treats each actor's logits as a deterministic policy
mu_i(o_i) and passes actions to the critics as one-hot vectors:

* target: every agent's next action is the one-hot arg-max of its *target*
  actor's logits, a'_j = onehot(argmax mu'_j(o'_j)) (no noise);
* actor update of agent i: its own action is a straight-through Gumbel-softmax
  sample of its current logits (forward: the one-hot of argmax(logits + g);
  backward: the gradient of softmax((logits + g) / temperature)); every other
  agent's action is the one-hot arg-max of its *current* actor's logits, held
  fixed;
* exploration (EnvRunners): a_i ~ Categorical(softmax(logits)), i.e. the
  forward value of the same Gumbel-softmax sample at temperature 1.
"""

from typing import Optional

import torch
from torch.nn import functional as F


def one_hot_argmax(logits: torch.Tensor) -> torch.Tensor:
    """One-hot of the arg-max over the last axis (ties: the first maximum)."""
    return F.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)


def sample_gumbel(shape, generator: Optional[torch.Generator], device) -> torch.Tensor:
    """Standard Gumbel(0, 1) noise -log(-log U), U ~ Uniform(0, 1), drawn from
    ``generator`` (torch's own ``F.gumbel_softmax`` takes no generator, so its
    draws could not be checkpointed and replayed exactly)."""
    uniform = torch.rand(shape, generator=generator, device=device)
    tiny = torch.finfo(uniform.dtype).tiny
    exponential = -torch.log(uniform.clamp_min(tiny))
    return -torch.log(exponential.clamp_min(tiny))


def straight_through_gumbel_softmax(
    logits: torch.Tensor, gumbel_noise: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Straight-through Gumbel-softmax sample (Jang et al., 2017).

    Forward value: exactly the one-hot of argmax(logits + gumbel_noise).
    Gradient: that of y = softmax((logits + gumbel_noise) / temperature).
    """
    soft = F.softmax((logits + gumbel_noise) / temperature, dim=-1)
    hard = one_hot_argmax(soft)
    return hard + (soft - soft.detach())


def td_targets(rewards: torch.Tensor, bootstrap: torch.Tensor, next_q: torch.Tensor,
               gamma: float) -> torch.Tensor:
    """y = r + gamma * bootstrap * Q'(o', a'), bootstrap = (1 - d) (times the
    agent's alive mask at o' when agents can leave the episode)."""
    return rewards + gamma * bootstrap * next_q

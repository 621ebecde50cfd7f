"""Pure tensor functions behind MAMT's losses (paper Eq. 9 and Eq. 10).

Kept free of RLlib so each can be unit-tested against a brute-force version.
"""

from typing import Iterable

import torch


def tsallis_log(x: torch.Tensor, q: float) -> torch.Tensor:
    """Tsallis q-logarithm ln_q(x) = (x^(1-q) - 1) / (1 - q); ln_1 = ln."""
    if q == 1.0:
        return torch.log(x)
    return (x.pow(1.0 - q) - 1.0) / (1.0 - q)


def tsallis_relative_entropy(
    probs: torch.Tensor, reference_probs: torch.Tensor, q: float
) -> torch.Tensor:
    """D_q(pi || pi_old) = -sum_a pi(a) ln_q(pi_old(a) / pi(a)), per row.

    The mirror-descent proximity term of Eq. 10 with MDPO's Tsallis-q logarithm
    (Table 3: q = 0.2). It is zero iff pi = pi_old, non-negative for q > 0, and
    equals KL(pi || pi_old) at q = 1. Computed exactly over the discrete
    actions rather than from one sampled action.
    """
    tiny = torch.finfo(probs.dtype).tiny
    ratio = reference_probs.clamp_min(tiny) / probs.clamp_min(tiny)
    return -(probs * tsallis_log(ratio, q)).sum(dim=-1)


def counterfactual_baseline(probs: torch.Tensor, q_values: torch.Tensor) -> torch.Tensor:
    """b_i(o, a_-i) = sum_a' pi_i(a'|o_i) Q_i(o, a', a_-i), exact for discrete a_i."""
    return (probs * q_values).sum(dim=-1)


def entropy(probs: torch.Tensor, log_probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy of each row of a categorical distribution."""
    return -(probs * log_probs).sum(dim=-1)


@torch.no_grad()
def soft_update_(
    targets: Iterable[torch.Tensor], sources: Iterable[torch.Tensor], tau: float
) -> None:
    """theta_bar <- tau * theta + (1 - tau) * theta_bar, in place (Alg. 2 line 19)."""
    for target, source in zip(targets, sources):
        target.lerp_(source, tau)

"""Pieces of the ``trust_region_update="hypergradient"`` reading of Eq. 8.

The δ objective of §3.2 is F(δ) = E[Σ_i V_i^{π(δ)} − KL̂_i(o, δ; θ)] under
Σ_i δ_i ≤ δ. Both parts depend on δ only *through the policy update* that δ
governs, so their δ-derivatives are hypergradients of the agents' mirror-descent
step ψ_j' = ψ_j − η ∇_ψ[L_j^PG + D_q(π_j‖π_j^old)/δ_j]. To first order,
dψ_j'/d log δ_j = η ∇_ψ D_q,j / δ_j, hence (η is absorbed into the δ step size):

* value slope   dV_j / d log δ_j        = −(∇_ψ L_j^PG · ∇_ψ D_q,j) / δ_j,
* drift slope   dΣ_i D_ns,i / d log δ_j = (∇_ψ N_j · ∇_ψ D_q,j) / δ_j, with
  N_j = Σ_i C_ij KL[h_i^j ‖ π_j] the part of Σ_i D_ns,i (Eq. 6) agent j's
  policy moves (∂D_ns,i/∂δ_j ≈ C_ij ∂KL_j/∂δ_j).

The functions here are pure tensor code: the slopes from per-agent gradients,
the gradient that steps log δ, the TRD-Net's training targets on rows whose
log δ is perturbed, the δ optimiser and the projection onto the budget.
"""

from typing import List, Sequence, Tuple

import torch


def per_agent_gradient_sets(losses: Sequence[torch.Tensor],
                            parameters: Sequence[Sequence[torch.Tensor]]
                            ) -> List[List[torch.Tensor]]:
    """∇ of each of several scalar ``losses`` w.r.t. each agent's parameters, as
    one flat vector per agent, from one batched backward pass
    (``torch.autograd.grad(..., is_grads_batched=True)``, which vmaps the
    backward over one-hot cotangents) instead of one pass per loss.
    Each loss is a sum of per-agent terms each of which depends on its own
    agent's parameters only, so one pass gives every agent its own gradient.

    Returns one list per loss of one flat gradient vector per agent. The graph
    is retained (the learner backpropagates through it again).
    """
    flat = [p for group in parameters for p in group]
    stacked = torch.stack([loss.reshape(()) for loss in losses])
    cotangents = torch.eye(len(losses), dtype=stacked.dtype, device=stacked.device)
    grads = torch.autograd.grad(
        stacked, flat, cotangents, retain_graph=True, allow_unused=True, is_grads_batched=True
    )
    out = []
    for index in range(len(losses)):
        per_agent, start = [], 0
        for group in parameters:
            pieces = [
                torch.zeros_like(p).reshape(-1) if g is None else g[index].reshape(-1)
                for p, g in zip(group, grads[start : start + len(group)])
            ]
            per_agent.append(torch.cat(pieces))
            start += len(group)
        out.append(per_agent)
    return out


def one_step_slopes(policy_gradient_grads: Sequence[torch.Tensor],
                    divergence_grads: Sequence[torch.Tensor],
                    non_stationarity_grads: Sequence[torch.Tensor],
                    deltas: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(value slope, drift slope), each (n,): dV_j/dlog δ_j and dΣ_i D_ns,i/dlog δ_j
    of one mirror-descent step (see module doc), per unit actor step size."""
    value = torch.stack([-(g @ d) for g, d in zip(policy_gradient_grads, divergence_grads)])
    drift = torch.stack([g @ d for g, d in zip(non_stationarity_grads, divergence_grads)])
    deltas = deltas.detach()
    return value / deltas, drift / deltas


TRUST_REGION_STEPS = ("mirror_descent", "log_space")
"""How log δ is stepped along F (``trust_region_step``); see :func:`log_delta_gradient`."""


def log_delta_gradient(value_slope: torch.Tensor, drift_slope: torch.Tensor,
                       deltas: torch.Tensor, bounds: tuple, step: str) -> torch.Tensor:
    """(n,) gradient of −F(δ) that the δ optimiser applies to log δ.

    The slopes are derivatives per unit log δ_j, so F is read as
    Σ_j s_j log δ_j near the current δ, with s_j = value slope − drift slope.

    * ``"mirror_descent"``: the exponentiated-gradient step on the budget
      simplex, log δ_j ← log δ_j + α ∂F/∂δ_j = log δ_j + α s_j/δ_j, followed by
      the common-factor projection. This is mirror descent with the entropy
      map, the geometry in which that projection is exact, so its fixed point
      is the budget's KKT point ∂F/∂δ_j = λ: δ_j ∝ s_j for agents with s_j > 0,
      the lower bound for the others, and the even split when all s_j are
      equal. Coordinates held at a bound whose gradient pushes them further out
      get 0, so they do not inflate the optimiser's shared scale.
    * ``"log_space"`` (issue 10 to session 8): log δ_j ← log δ_j + α s_j. The
      common-factor projection is not the projection of that geometry: every
      point of the budget is stationary when all s_j are equal (δ random-walks),
      and any lasting difference between the s_j drives δ to a corner of
      ``trust_region_bounds``.
    """
    net = (drift_slope - value_slope).detach()
    if step == "log_space":
        return net
    deltas = deltas.detach()
    gradient = net / deltas
    low, high = bounds
    pushed_out = ((deltas <= low * (1 + 1e-4)) & (gradient > 0)) | (
        (deltas >= high * (1 - 1e-4)) & (gradient < 0)
    )
    return gradient.masked_fill(pushed_out, 0.0)


def perturbed_targets(non_stationarity_total: torch.Tensor, drift_slope: torch.Tensor,
                      perturbation: torch.Tensor, projection_range: tuple) -> torch.Tensor:
    """(B,) targets Σ_i D_ns,i for rows whose log δ is shifted by ``perturbation``
    (B, n): the measured total plus its first-order change Σ_j slope_j ε_j,
    clipped to n times Eq. 6's projection range."""
    n = perturbation.shape[-1]
    shifted = non_stationarity_total + perturbation @ drift_slope
    return shifted.clamp(projection_range[0] * n, projection_range[1] * n)


class SharedScaleAdam(torch.optim.Optimizer):
    """Adam whose second-moment estimate is one scalar shared by all coordinates.

    Per-coordinate Adam turns same-sign gradients of very different sizes into
    equal steps (the reason learned δ could not reallocate); sharing the scale
    keeps the ratios between agents' gradients, while the step size stays
    independent of the gradients' absolute units.
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-12):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        """One step: m ← β1 m + (1−β1) g, v ← β2 v + (1−β2) mean(g²),
        p ← p − lr · m̂ / (√v̂ + eps)."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros((), dtype=param.dtype, device=param.device)
                state["step"] += 1
                step = float(state["step"])
                grad = param.grad
                state["exp_avg"].mul_(beta1).add_(grad, alpha=1 - beta1)
                state["exp_avg_sq"].mul_(beta2).add_(grad.pow(2).mean(), alpha=1 - beta2)
                first = state["exp_avg"] / (1 - beta1 ** step)
                second = state["exp_avg_sq"] / (1 - beta2 ** step)
                param.add_(-group["lr"] * first / (second.sqrt() + group["eps"]))
        return loss


BUDGET_CONSTRAINTS = ("equality", "upper_bound")
"""How learned δ meets the joint budget (``trust_region_budget_constraint``)."""


@torch.no_grad()
def project_log_deltas_(log_deltas: torch.Tensor, low: float, high: float, budget: float,
                        constraint: str = "upper_bound", iterations: int = 60) -> None:
    """In place: clip δ_i to [low, high] and put Σ_i δ_i on the budget.

    Every δ_i is scaled by one common factor c and clipped again, with c found
    by bisection so that Σ_i clip(c δ_i) = budget (a KL projection onto the
    box-capped budget set; agents pinned at a bound hand their share to the
    others). ``"upper_bound"``: only when Σ_i δ_i exceeds the budget (c < 1),
    so δ may shrink below it. ``"equality"``: always, so δ lies on the
    budget simplex Σ_i δ_i = budget (as far as the bounds allow) and only
    moves mass between agents.
    """
    low_log, high_log = float(torch.log(torch.tensor(low))), float(torch.log(torch.tensor(high)))
    log_deltas.clamp_(low_log, high_log)
    total = float(log_deltas.exp().sum())
    if total == budget or (constraint == "upper_bound" and total < budget):
        return
    if total > budget:
        shift_low, shift_high = low_log - float(log_deltas.max()), 0.0
    else:
        shift_low, shift_high = 0.0, high_log - float(log_deltas.min())
    for _ in range(iterations):
        middle = 0.5 * (shift_low + shift_high)
        total = float((log_deltas + middle).clamp(low_log, high_log).exp().sum())
        if total > budget:
            shift_high = middle
        else:
            shift_low = middle
    log_deltas.add_(shift_low).clamp_(low_log, high_log)

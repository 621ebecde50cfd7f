"""The learner side of trust-region decomposition (§3.2, Algorithm 2 lines 11-16).

Two readings of the δ/θ updates of Eq. 7-8, chosen by ``trust_region_update``.

``"hypergradient"`` (default): F(δ) = E[Σ_i V_i^{π(δ)} − KL̂_i(o, δ; θ)] is read
as a function of δ *through the policy update δ governs*. Per learner update,
on the first ``coordination_batch_size`` rows:

1. C (Eq. 5) and D_ns,i (Eq. 6) as in the literal reading below, with C read
   per ``coordination_normalization``: ``"relative"`` (default) measures agent
   j's counterfactual influence on Q_i against agent i's own
   (:func:`~rllib_mamt.algorithms.mamt.coordination.relative_coefficients`), so a column of C
   is ~0 for an agent nobody depends on whatever n and the reward scale;
   ``"paper"`` is Eq. 5's softmax, whose rows always sum to one;
2. one-step hypergradients of each agent's mirror-descent step
   (:mod:`rllib_mamt.algorithms.mamt.delta_allocation`): the value slope dV_j/dlog δ_j =
   −∇L_j^PG·∇D_q,j/δ_j (critic-based policy gradient against the pull toward
   π_old) and the drift slope dΣ_i D_ns,i/dlog δ_j = ∇N_j·∇D_q,j/δ_j with
   N_j = Σ_i C_ij KL[h_i^j‖π_j], i.e. ∂D_ns,i/∂δ_j ≈ C_ij ∂KL_j/∂δ_j: only
   agents others depend on pay for a looser region;
3. θ is fitted (Eq. 7) on rows whose log δ is perturbed by ε ~ N(0, 0.3²) per
   agent, against Σ_i D_ns,i + Σ_j drift slope_j · ε_j, so the TRD-Net sees δ
   vary and its KL̂ is consistent with the slopes;
4. log δ takes a step along −∂F/∂δ = (drift slope − value slope)/δ
   (``trust_region_step="mirror_descent"``, the exponentiated-gradient step on
   the budget simplex, whose fixed point is δ_j ∝ net slope_j;
   :func:`~rllib_mamt.algorithms.mamt.delta_allocation.log_delta_gradient`) with
   :class:`~rllib_mamt.algorithms.mamt.delta_allocation.SharedScaleAdam` (one shared
   second-moment scale, so δ moves in proportion to the gradients' sizes,
   in both directions); the actors' proximity terms use δ detached. The
   drift part is the hypergradient itself, not ∂ΣKL̂/∂δ of the fitted
   TRD-Net: the slopes are ~1e-6 per unit step size while a fitted network's
   δ-derivative carries errors ~1e-3 (measured in tests/test_delta_allocation.py's
   world), so the network's derivative would drown the signal it was fitted to;
5. after the step δ is clipped to [δ_min, δ_max] and scaled onto the budget
   exactly (:func:`~rllib_mamt.algorithms.mamt.delta_allocation.project_log_deltas_`): onto
   Σδ = budget with ``trust_region_budget_constraint="equality"`` (default),
   only when Σδ exceeds it with ``"upper_bound"``; this replaces the ReLU
   budget term of Eq. 8, which a projection makes inert. Under the upper
   bound, drift slopes that outweigh the value slopes for every agent shrink
   all δ together until the policies freeze (Spread-3-Mix, BENCHMARKS.md);
   the equality keeps MAMD's joint region and only moves it between agents.

Why not the literal reading: there log δ is the same TRD-Net input on every row,
so ∂KL̂/∂δ is never identified by data, its value part D_q/δ² is always "loosen"
and in divergence units, and per-coordinate Adam turns gradients of any size
into equal steps: δ drifted about uniformly instead of following C (issue 10).

``"literal"`` (the reading used up to issue 10, kept for comparison):

per learner update, on the first ``coordination_batch_size`` rows of the batch
(rows are i.i.d. draws from the buffer, so this is an unbiased sub-batch):

1. coordination coefficients C (Eq. 5, or an ablation's fixed / random C);
2. the non-stationarity D_ns,i (Eq. 6) from the opponent models (or, for
   MAMT-WS, from the consecutive policies pi_old -> pi);
3. ``trd_updates_per_delta_update`` steps of the TRD-Net parameters theta on
   L_ns = (sum_i KL_hat_i - sum_i D_ns,i)^2 (Eq. 7), the fast timescale of Eq. 8;
4. one step of log delta (the slow timescale) on
   -F(delta) = -sum_i V_i + sum_i KL_hat_i(delta; theta) + ReLU(sum_i delta_i - delta),

and, on the whole batch, a cross-entropy step of the opponent models.

Reading of ∇_delta sum_i V_i (the paper leaves it open; DESIGN.md §2): the
mirror-descent actor objective J_i = E[A_i log pi_i] - D_q(pi_i || pi_old)/delta_i
is the local surrogate of V_i, and its delta-gradient D_q/delta_i^2 is obtained by
leaving delta attached in the actors' proximity term, so every actor loss also
sends a gradient to log delta_i (looser trust region -> larger surrogate value).
KL_hat_i is evaluated with theta detached for the delta step, so each of theta
and delta is moved only by its own objective. After each step log delta is
clipped to [log delta_min, log delta_max] and, if sum_i delta_i still exceeds the
budget, delta is scaled down onto it (the ReLU term of Eq. 8 alone only
discourages excess; the projection guarantees the constraint). log delta is
stepped by per-coordinate Adam.
"""

from typing import Dict

import math

import torch
from torch.func import functional_call

from rllib_mamt.algorithms.mamt.coordination import (
    categorical_kl,
    coefficients_from_influence,
    counterfactual_influence,
    live_pairs,
    fixed_coefficients,
    non_stationarity,
    random_coefficients,
)
from rllib_mamt.algorithms.mamt.decomposition_defaults import joint_trust_region_budget
from rllib_mamt.algorithms.mamt.delta_allocation import (
    SharedScaleAdam,
    log_delta_gradient,
    one_step_slopes,
    per_agent_gradient_sets,
    perturbed_targets,
    project_log_deltas_,
)
from rllib_mamt.learner_precision import full_precision
from rllib_mamt.modules.actor import pad_logits
from rllib_mamt.central_module_spec import CENTRAL_MODULE_ID

TRD_OPTIMIZER = "trd_net"
OPPONENT_OPTIMIZER = "opponent_models"
DELTA_OPTIMIZER = "trust_regions"
LEARNED_TRUST_REGION_MODES = ("learned", "fixed_coef", "random_coef", "weighted_sum")
TRUST_REGION_UPDATES = ("hypergradient", "literal")
DELTA_PERTURBATION_SCALE = 0.3
"""Standard deviation of the per-row, per-agent log δ perturbations on which the
TRD-Net is fitted in the ``"hypergradient"`` reading."""


def make_delta_optimizer(params, trust_region_update: str, adam_epsilon: float):
    """The optimiser of log delta for a ``trust_region_update`` reading:
    :class:`SharedScaleAdam` for ``"hypergradient"``, per-coordinate Adam for
    ``"literal"``."""
    if trust_region_update == "hypergradient":
        return SharedScaleAdam(params)
    return torch.optim.Adam(params, betas=(0.9, 0.999), eps=adam_epsilon)


def _mask_dead_pairs(pairs: torch.Tensor, alive) -> torch.Tensor:
    """(B, n, n) ``pairs`` with 0 wherever agent i or j is dead (Eq. 5/6 leave
    agents that have left the episode out)."""
    return pairs if alive is None else pairs * live_pairs(alive)


class TrustRegionLearning:
    """Mixin for ``MAMTTorchLearner``: C, D_ns, TRD-Net, opponent models and delta."""

    def _counterfactual_critic(self, central):
        """The attention Q critic whose counterfactuals Q_i(a_\\j) give C (Eq. 5):
        ``central.critic`` (a hook for learners whose central module holds
        another critic under that name, e.g. MAMT-PPO's state-value critic)."""
        return central.critic

    def _coordination_coefficients(self, central, observations, actions, policy_probs,
                                   alive=None):
        """(B, n, n) C for the configured mode and the (B, n, n) counterfactual
        influence it was computed from (None for the fixed / random ablations),
        without gradient.

        ``policy_probs`` is (B, n, A_max): pi_j(. | o_j), zero on padded actions.
        With a (B, n) ``alive`` mask, pairs with a dead agent get C_ij = 0.
        """
        mode = self.config.trust_region_mode
        batch, n = actions.shape
        if mode == "fixed_coef":
            coefficients = fixed_coefficients(batch, n, device=actions.device)
            return _mask_dead_pairs(coefficients, alive), None
        if mode == "random_coef":
            coefficients = random_coefficients(
                batch, n, self._sampling_generator, device=actions.device
            )
            return _mask_dead_pairs(coefficients, alive), None
        q_joint, q_without = self._counterfactual_critic(central).counterfactual_values(
            observations, actions, policy_probs, alive
        )
        influence = _mask_dead_pairs(counterfactual_influence(q_joint, q_without), alive)
        coefficients = coefficients_from_influence(
            influence, self.config.coordination_threshold, alive,
            self.config.coordination_normalization,
        )
        return coefficients, influence

    def _trust_region_decomposition_losses(
        self, central, observations, actions, log_probs, old_log_probs, alive=None,
        actor_terms=None,
    ) -> Dict[str, torch.Tensor]:
        """Losses of the opponent models, the TRD-Net and delta (see module doc).

        Args:
            actor_terms: For ``trust_region_update="hypergradient"``: (per-agent
                policy-gradient losses, per-agent divergences D_q(pi_j || pi_old),
                per-agent lists of actor parameters, per-agent log pi_j on the
                rows); all computed on the first ``coordination_batch_size``
                rows by a forward of those rows only, with their graphs.

        Returns:
            {optimizer name: loss} for the joint backward pass of this update.
        """
        config = self.config
        n = len(self.agent_ids)
        rows = min(config.coordination_batch_size or actions.shape[0], actions.shape[0])
        sub_observations = [obs[:rows] for obs in observations]
        sub_actions = actions[:rows]
        max_actions = central.max_actions
        policy_log_probs = torch.stack(
            [pad_logits(lp[:rows].detach(), max_actions) for lp in log_probs], dim=1
        ).log_softmax(-1)
        losses = {}
        opponent_logits = None
        if central.opponent_models is not None:
            opponent_logits = central.opponent_models(observations).float()
            valid = central.opponent_models.valid_actions
            opponent_loss = central.opponent_models.cross_entropy(opponent_logits, actions)
            opponent_loss = opponent_loss + config.opponent_model_logit_regularization * (
                opponent_logits.masked_fill(~valid, 0.0).pow(2).sum()
                / (valid.sum() * n * actions.shape[0])
            )
            losses[OPPONENT_OPTIMIZER] = opponent_loss
            self.metrics.log_value(
                (CENTRAL_MODULE_ID, "opponent_model_loss"), opponent_loss.detach(), window=1
            )
        with torch.no_grad():
            coefficients, influence = self._coordination_coefficients(
                central, sub_observations, sub_actions, policy_log_probs.exp(),
                None if alive is None else alive[:rows],
            )
            if opponent_logits is None:  # MAMT-WS: consecutive policies, not models
                previous = torch.stack(
                    [pad_logits(lp[:rows], max_actions) for lp in old_log_probs], dim=1
                ).log_softmax(-1)
                predicted = previous.unsqueeze(1).expand(rows, n, n, max_actions)
                scale = 1.0 / n
            else:
                predicted = opponent_logits[:rows].log_softmax(-1)
                scale = 1.0
            target = non_stationarity(
                coefficients, predicted, policy_log_probs,
                tuple(config.non_stationarity_range), scale,
            )

        log_deltas = central.log_trust_region_deltas
        hypergradient = config.trust_region_update == "hypergradient"
        if hypergradient:
            value_slope, drift_slope = self._one_step_slopes(
                coefficients, predicted, policy_log_probs, target, scale, actor_terms,
                log_deltas.exp(), actor_terms[3], max_actions,
            )
            perturbation = DELTA_PERTURBATION_SCALE * torch.randn(
                rows, n, generator=self._sampling_generator, device=log_deltas.device
            )
            trd_inputs = log_deltas.detach() + perturbation
            trd_targets = perturbed_targets(
                target.sum(-1), drift_slope, perturbation,
                tuple(config.non_stationarity_range),
            )
        else:
            trd_inputs, trd_targets = log_deltas.detach(), target.sum(-1)

        def trd_loss():
            predicted_kl = central.trd_net(
                sub_observations, sub_actions, trd_inputs, coefficients
            ).float()
            return (predicted_kl.sum(-1) - trd_targets).pow(2).mean()

        for _ in range(config.trd_updates_per_delta_update - 1):
            self._step_one_optimizer(CENTRAL_MODULE_ID, TRD_OPTIMIZER, trd_loss())
        losses[TRD_OPTIMIZER] = trd_loss()

        frozen_theta = {k: v.detach() for k, v in central.trd_net.named_parameters()}
        predicted_kl = functional_call(
            central.trd_net, frozen_theta,
            (sub_observations, sub_actions, log_deltas, coefficients),
        ).float()
        deltas = log_deltas.exp()
        if hypergradient:
            gradient = log_delta_gradient(
                value_slope, drift_slope, deltas, tuple(config.trust_region_bounds),
                config.trust_region_step,
            )
            losses[DELTA_OPTIMIZER] = (gradient * log_deltas).sum()
        else:
            budget_excess = torch.relu(deltas.sum() - self._trust_region_budget())
            losses[DELTA_OPTIMIZER] = (
                predicted_kl.mean(0).sum()
                + config.trust_region_budget_penalty * budget_excess
            )

        self.metrics.log_dict(
            {
                "trd_loss": losses[TRD_OPTIMIZER].detach(),
                "delta_loss": losses[DELTA_OPTIMIZER].detach(),
                "trust_region_sum": deltas.sum().detach(),
                "non_stationarity_total": target.sum(-1).mean(),
            },
            key=CENTRAL_MODULE_ID,
            window=1,
        )
        mean_coefficients = coefficients.mean(0)
        mean_influence = None if influence is None else influence.mean(0)
        for i, agent in enumerate(self.agent_ids):
            others = [(j, other) for j, other in enumerate(self.agent_ids) if j != i]
            values = {
                "non_stationarity": target[:, i].mean(),
                "predicted_kl": predicted_kl[:, i].mean().detach(),
                "coordination": {other: mean_coefficients[i, j] for j, other in others},
            }
            if hypergradient:
                values["delta_value_slope"] = value_slope[i]
                values["delta_drift_slope"] = drift_slope[i]
            if mean_influence is not None:
                values["counterfactual_influence"] = {
                    other: mean_influence[i, j] for j, other in others
                }
            self.metrics.log_dict(values, key=agent, window=1)
        return losses

    def _trust_region_budget(self) -> float:
        return joint_trust_region_budget(self.config.trust_region_budget, len(self.agent_ids))

    def _one_step_slopes(self, coefficients, predicted, policy_log_probs, target, scale,
                         actor_terms, deltas, sub_log_probs, max_actions):
        """(value slope, drift slope), each (n,), of the agents' one-step
        mirror-descent updates (:func:`rllib_mamt.algorithms.mamt.delta_allocation.one_step_slopes`).

        N_j = sum_i C_ij KL[h_i^j || pi_j] is differentiated through pi_j only,
        on the rows where Eq. 6's projection does not clip D_ns,i.
        """
        if actor_terms is None:
            raise ValueError(
                "trust_region_update='hypergradient' needs the actors' loss terms "
                "(actor_terms=None was passed)"
            )
        policy_gradient_losses, divergences, parameters, _ = actor_terms
        attached = torch.stack(
            [pad_logits(lp, max_actions) for lp in sub_log_probs], dim=1
        ).log_softmax(-1)
        divergence = categorical_kl(predicted.detach(), attached.unsqueeze(1))
        low, high = self.config.non_stationarity_range
        unclipped = (target < high) & ((target > low) | (low <= 0))
        drift = (scale * coefficients * divergence).sum(-1) * unclipped
        with full_precision(deltas.device):
            gradients = per_agent_gradient_sets(
                [sum(policy_gradient_losses), sum(divergences), drift.sum(-1).mean()],
                parameters,
            )
        return one_step_slopes(*gradients, deltas)

    @torch.no_grad()
    def _project_trust_regions(self, central) -> None:
        """Clip delta_i to [delta_min, delta_max], then scale onto the budget
        (``trust_region_budget_constraint`` in the hypergradient reading)."""
        low, high = self.config.trust_region_bounds
        log_deltas = central.log_trust_region_deltas
        if self.config.trust_region_update == "hypergradient":
            project_log_deltas_(log_deltas, low, high, self._trust_region_budget(),
                                self.config.trust_region_budget_constraint)
            return
        log_deltas.clamp_(math.log(low), math.log(high))
        total = float(log_deltas.exp().sum())
        budget = self._trust_region_budget()
        if total > budget:
            log_deltas.add_(math.log(budget / total))
            log_deltas.clamp_min_(math.log(low))

"""The learner side of trust-region decomposition (§3.2, Algorithm 2 lines 11-16).

Per learner update, on the first ``coordination_batch_size`` rows of the batch
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
discourages excess; the projection guarantees the constraint).
"""

from typing import Dict

import math

import torch
from torch.func import functional_call

from rllib_mamt.coordination import (
    coefficients_from_influence,
    counterfactual_influence,
    live_pairs,
    fixed_coefficients,
    non_stationarity,
    random_coefficients,
)
from rllib_mamt.modules.actor import pad_logits
from rllib_mamt.modules.central import CENTRAL_MODULE_ID

TRD_OPTIMIZER = "trd_net"
OPPONENT_OPTIMIZER = "opponent_models"
DELTA_OPTIMIZER = "trust_regions"
LEARNED_TRUST_REGION_MODES = ("learned", "fixed_coef", "random_coef", "weighted_sum")


def _mask_dead_pairs(pairs: torch.Tensor, alive) -> torch.Tensor:
    """(B, n, n) ``pairs`` with 0 wherever agent i or j is dead (Eq. 5/6 leave
    agents that have left the episode out)."""
    return pairs if alive is None else pairs * live_pairs(alive)


class TrustRegionLearning:
    """Mixin for ``MAMTTorchLearner``: C, D_ns, TRD-Net, opponent models and delta."""

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
        q_joint, q_without = central.critic.counterfactual_values(
            observations, actions, policy_probs, alive
        )
        influence = _mask_dead_pairs(counterfactual_influence(q_joint, q_without), alive)
        coefficients = coefficients_from_influence(
            influence, self.config.coordination_threshold, alive
        )
        return coefficients, influence

    def _trust_region_decomposition_losses(
        self, central, observations, actions, log_probs, old_log_probs, alive=None
    ) -> Dict[str, torch.Tensor]:
        """Losses of the opponent models, the TRD-Net and delta (see module doc).

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
            opponent_logits = central.opponent_models(observations)
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

        def trd_loss():
            predicted_kl = central.trd_net(
                sub_observations, sub_actions, log_deltas.detach(), coefficients
            )
            return (predicted_kl.sum(-1) - target.sum(-1)).pow(2).mean()

        for _ in range(config.trd_updates_per_delta_update - 1):
            self._step_one_optimizer(CENTRAL_MODULE_ID, TRD_OPTIMIZER, trd_loss())
        losses[TRD_OPTIMIZER] = trd_loss()

        frozen_theta = {k: v.detach() for k, v in central.trd_net.named_parameters()}
        predicted_kl = functional_call(
            central.trd_net, frozen_theta,
            (sub_observations, sub_actions, log_deltas, coefficients),
        )
        deltas = log_deltas.exp()
        budget_excess = torch.relu(deltas.sum() - self._trust_region_budget())
        losses[DELTA_OPTIMIZER] = (
            predicted_kl.mean(0).sum() + config.trust_region_budget_penalty * budget_excess
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
            if mean_influence is not None:
                values["counterfactual_influence"] = {
                    other: mean_influence[i, j] for j, other in others
                }
            self.metrics.log_dict(values, key=agent, window=1)
        return losses

    def _trust_region_budget(self) -> float:
        config = self.config
        if config.trust_region_budget is not None:
            return float(config.trust_region_budget)
        return float(len(self.agent_ids))

    @torch.no_grad()
    def _project_trust_regions(self, central) -> None:
        """Clip delta_i to [delta_min, delta_max], then scale onto the budget."""
        low, high = self.config.trust_region_bounds
        log_deltas = central.log_trust_region_deltas
        log_deltas.clamp_(math.log(low), math.log(high))
        total = float(log_deltas.exp().sum())
        budget = self._trust_region_budget()
        if total > budget:
            log_deltas.add_(math.log(budget / total))
            log_deltas.clamp_min_(math.log(low))

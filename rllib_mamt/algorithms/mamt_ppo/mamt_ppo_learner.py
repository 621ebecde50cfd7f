"""MAMT-PPO's torch learner: MA-PPO's update with MAMT's learned trust regions.

Which PPO constraint delta_i sets: a per-agent KL penalty. Each agent's actor
loss on a minibatch is

    L_j = -surrogate_j - c_H H_j + D_j / delta_j,   D_j = E_o KL[pi_j_old || pi_j],

PPO's "KL-penalty" objective (Schulman et al., 2017, §4) with beta_j = 1 /
delta_j set by the learned delta instead of PPO's adaptive-beta rule; the
surrogate is unclipped by default (``clip_param=None``; a number adds PPO's
clipping on top). Why not a per-agent clip range eps_j = f(delta_j): MAMT's
delta update (:mod:`rllib_mamt.algorithms.mamt.trust_region_learning`, "hypergradient"
reading) differentiates each agent's step psi_j' = psi_j - eta grad[L_j^PG +
D_j / delta_j] w.r.t. log delta_j (:mod:`rllib_mamt.algorithms.mamt.delta_allocation`). The
KL-penalty objective is exactly that step, with L_j^PG = -surrogate_j - c_H H_j
and D_j the KL to the sampling policy, so the value and drift slopes apply
unchanged. A clip range enters the step only through which rows' gradients
it cuts off (ratio outside [1 - eps, 1 + eps] on the advantage's side), a
piecewise-constant function of eps_j whose derivative is zero almost
everywhere, and delta would have to be mapped to eps by a made-up f.

Per minibatch update (RLlib's ``num_epochs`` x minibatches, after MA-PPO's GAE
on the whole batch), in one backward pass with the actors and the critic:

1. MA-PPO's actor losses plus the penalties D_j / delta_j (delta detached),
   and MA-PPO's value-critic loss;
2. the attention Q critic Q_i(o, a) regressed on the lambda-returns
   (:func:`~rllib_mamt.algorithms.mamt_ppo.losses.q_critic_loss`), so Eq. 5's
   counterfactuals come from an action-dependent critic of the sampling
   policies. Not MAMT's critic loss (Eq. 9): its soft TD target (entropy
   alpha = 1/reward_scale, target critic and target actors) estimates the
   soft Q of SAC-style actors from replayed data; on-policy, the batch's
   lambda-returns estimate Q^pi of the sampling policies directly (the
   TD(lambda) targets of COMA's counterfactual critic), with no target
   networks to keep;
3. MAMT's trust-region decomposition, by MAMT's own code
   (``TrustRegionLearning._trust_region_decomposition_losses``): opponent
   models on the minibatch's actions, C (Eq. 5) and D_ns (Eq. 6) on
   ``coordination_batch_size`` random rows, the one-step slopes from the
   per-agent gradients of L_j^PG, D_j and N_j on those rows, the TRD-Net fit
   (Eq. 7) and the SharedScaleAdam step of log delta, then the projection onto
   the budget.

Why per minibatch and not once per iteration at its start: there pi_j =
pi_j_old, so grad D_j = 0 and every slope vanishes. A minibatch step is the
counterpart of MAMT's learner update (one delta step each); delta changed by
one step weights the penalties of the next. The first minibatch step of an
iteration, still at pi_j = pi_j_old, takes no delta step: its slopes are
rounding noise (~1e-10 against ~1e-4 a step later, in
tests/test_mamt_ppo.py's world) and SharedScaleAdam, which divides by the
gradients' own scale, would turn that noise into a full step.
"""

from typing import Dict, Optional

import numpy as np
import torch

from ray.rllib.policy.sample_batch import MultiAgentBatch
from ray.rllib.utils.typing import ModuleID

from rllib_mamt.algorithms.mamt_ppo.losses import (
    kl_penalties,
    kl_to_sampling_policy,
    q_critic_loss,
)
from rllib_mamt.algorithms.mappo.losses import clipped_surrogate_loss, masked_column_mean
from rllib_mamt.algorithms.mappo.mappo_learner import (
    ADVANTAGES,
    CRITIC_OPTIMIZER,
    OLD_LOG_PROBS,
    VALUE_TARGETS,
    MAPPOTorchLearner,
    policy_distribution,
)
from rllib_mamt.joint_replay_buffer import ACTIONS, obs_key
from rllib_mamt.central_module_spec import CENTRAL_MODULE_ID
from rllib_mamt.finite_updates import require_finite_update
from rllib_mamt.learner_optimizers import register_adam_groups
from rllib_mamt.learner_seeding import learner_sampling_seed
from rllib_mamt.algorithms.mamt.trust_region_learning import (
    DELTA_OPTIMIZER,
    OPPONENT_OPTIMIZER,
    TRD_OPTIMIZER,
    TrustRegionLearning,
    make_delta_optimizer,
)

Q_CRITIC_OPTIMIZER = "q_critic"
SAMPLING_GENERATOR_STATE = "mamt_ppo_sampling_generator"


def old_policy_key(agent_index: int) -> str:
    """Column of agent k's log pi_k_old(.|o_k) over all its actions."""
    return f"old_action_log_probs_{agent_index}"


class MAMTPPOTorchLearner(TrustRegionLearning, MAPPOTorchLearner):
    """MA-PPO's learner whose per-agent KL penalties 1/delta_j follow MAMT's
    trust-region decomposition (see module doc)."""

    def build(self) -> None:
        super().build()
        self._sampling_generator = torch.Generator(device=self._device)
        self._sampling_generator.manual_seed(learner_sampling_seed(self.config.seed, 0))
        self._at_sampling_policy = False  # True from with_ppo_targets to the first step

    def _counterfactual_critic(self, central):
        return central.q_critic

    def configure_optimizers_for_module(self, module_id: ModuleID, config=None) -> None:
        if module_id != CENTRAL_MODULE_ID:
            super().configure_optimizers_for_module(module_id, config)
            return
        module = self.module[module_id].unwrapped()
        register_adam_groups(self, module_id, {
            CRITIC_OPTIMIZER: (list(module.critic.parameters()), config.critic_lr),
            Q_CRITIC_OPTIMIZER: (list(module.q_critic.parameters()), config.critic_lr),
            TRD_OPTIMIZER: (list(module.trd_net.parameters()), config.trd_lr),
            OPPONENT_OPTIMIZER: (list(module.opponent_models.parameters()),
                                 config.opponent_model_lr),
        }, config.adam_epsilon)
        params = [module.log_trust_region_deltas]
        self.register_optimizer(
            module_id=module_id, optimizer_name=DELTA_OPTIMIZER,
            optimizer=make_delta_optimizer(params, "hypergradient", config.adam_epsilon),
            params=params, lr_or_lr_schedule=config.delta_lr,
        )

    def clip_ranges(self) -> torch.Tensor:
        """(n,) clip ranges: ``clip_param`` for every agent, inf (no clipping,
        PPO's KL-penalty objective) when it is None."""
        clip = self.config.clip_param
        return torch.full((len(self.agent_ids),), float("inf") if clip is None else float(clip),
                          device=self._device)

    @torch.no_grad()
    def with_ppo_targets(self, batch: MultiAgentBatch) -> MultiAgentBatch:
        """MA-PPO's targets plus each sampling policy's log-probabilities of
        all actions (for the exact KL[pi_old || pi])."""
        batch = super().with_ppo_targets(batch)
        self._at_sampling_policy = True
        data = batch.policy_batches[CENTRAL_MODULE_ID]
        for k, agent in enumerate(self.agent_ids):
            observations = torch.as_tensor(np.asarray(data[obs_key(k)]), device=self._device)
            logits = policy_distribution(self._actor(agent), observations).logits.log_softmax(-1)
            data[old_policy_key(k)] = logits.cpu().numpy()
        return batch

    def trust_region_terms(self, data: Dict, distributions: list,
                           alive: Optional[torch.Tensor]):
        """((n,) KL penalties D_j / delta_j, Q-critic loss + the decomposition's
        losses) on one minibatch (see module doc)."""
        central = self._central()
        n = len(self.agent_ids)
        observations = [data[obs_key(k)] for k in range(n)]
        actions = data[ACTIONS].long()
        old_log_probs = [data[old_policy_key(k)] for k in range(n)]
        divergences = kl_to_sampling_policy(
            old_log_probs, [d.logits.log_softmax(-1) for d in distributions], alive
        )
        deltas = central.trust_region_deltas()
        penalties = kl_penalties(divergences, deltas)
        q_loss, q_losses = q_critic_loss(
            central.q_critic, observations, actions, data[VALUE_TARGETS],
            self.config.huber_delta, self.config.critic_regularization_coefficient, alive,
        )
        decomposition = self._decomposition_losses(
            central, observations, actions, old_log_probs, alive, data
        )
        self.metrics.log_value((CENTRAL_MODULE_ID, "q_critic_loss"), q_loss.detach(), window=1)
        for k, agent in enumerate(self.agent_ids):
            self.metrics.log_dict(
                {"kl_to_sampling_policy": divergences[k].detach(),
                 "trust_region_delta": deltas[k].detach(),
                 "q_value_loss": q_losses[k].detach()},
                key=agent, window=1,
            )
        return penalties, q_loss + sum(decomposition.values())

    def _decomposition_losses(self, central, observations, actions, old_log_probs, alive,
                              data) -> Dict[str, torch.Tensor]:
        """MAMT's opponent-model, TRD-Net and delta losses on the minibatch,
        its rows shuffled so that the first ``coordination_batch_size`` are a
        random sub-batch, with the actor terms of the one-step slopes
        (L_j^PG, D_j, parameters, log pi_j) computed on those rows."""
        config = self.config
        size = actions.shape[0]
        rows = min(config.coordination_batch_size or size, size)
        order = torch.randperm(size, generator=self._sampling_generator,
                               device=self._sampling_generator.device).to(actions.device)
        observations = [obs[order] for obs in observations]
        actions = actions[order]
        alive = None if alive is None else alive[order]
        sub = order[:rows]
        sub_alive = None if alive is None else alive[:rows]
        sub_old = [old[sub] for old in old_log_probs]
        sub_distributions = [
            policy_distribution(self._actor(agent), observations[k][:rows])
            for k, agent in enumerate(self.agent_ids)
        ]
        sub_log_probs = [d.logits.log_softmax(-1) for d in sub_distributions]
        taken = torch.stack(
            [d.logp(actions[:rows, k]) for k, d in enumerate(sub_distributions)], dim=-1
        )
        entropies = masked_column_mean(
            torch.stack([d.entropy() for d in sub_distributions], -1), sub_alive
        )
        policy_gradient_losses = clipped_surrogate_loss(
            taken, data[OLD_LOG_PROBS][sub], data[ADVANTAGES][sub], self.clip_ranges(),
            sub_alive,
        ) - self.config.entropy_coeff * entropies
        divergences = kl_to_sampling_policy(sub_old, sub_log_probs, sub_alive)
        actor_terms = (
            list(policy_gradient_losses.unbind()),
            list(divergences.unbind()),
            [list(self._actor(agent).parameters()) for agent in self.agent_ids],
            sub_log_probs,
        )
        losses = self._trust_region_decomposition_losses(
            central, observations, actions, sub_log_probs, sub_old, alive, actor_terms
        )
        if self._at_sampling_policy:
            del losses[DELTA_OPTIMIZER]  # pi = pi_old: the slopes are 0 (see module doc)
        return losses

    def _optimizer_groups(self):
        """MA-PPO's groups plus the Q critic, TRD-Net, opponent models (clipped
        as in MAMT) and log delta (not clipped)."""
        n = len(self.agent_ids)
        config = self.config
        return super()._optimizer_groups() + [
            (CENTRAL_MODULE_ID, Q_CRITIC_OPTIMIZER, config.critic_grad_clip),
            (CENTRAL_MODULE_ID, TRD_OPTIMIZER, config.trd_grad_clip or 10.0 * n),
            (CENTRAL_MODULE_ID, OPPONENT_OPTIMIZER, config.opponent_model_grad_clip),
            (CENTRAL_MODULE_ID, DELTA_OPTIMIZER, None),
        ]

    def _step_all(self, loss: torch.Tensor) -> None:
        """MA-PPO's joint step of every optimiser, then delta's projection onto
        [delta_min, delta_max] and the budget."""
        super()._step_all(loss)
        self._at_sampling_policy = False
        self._project_trust_regions(self._central())

    def _step_one_optimizer(self, module_id, name, loss) -> None:
        """One separate step of one optimiser (the TRD-Net's extra steps of Eq. 8)."""
        optimizer = self.get_optimizer(module_id, name)
        params = [self._params[pid] for pid in self._optimizer_parameters[optimizer]]
        limits = {(m, o): limit for m, o, limit in self._optimizer_groups()}
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, limits[(module_id, name)] or float("inf"))
        require_finite_update(loss, {(module_id, name): norm})
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def get_state(self, *args, **kwargs):
        state = super().get_state(*args, **kwargs)
        state[SAMPLING_GENERATOR_STATE] = self._sampling_generator.get_state()
        return state

    def set_state(self, state) -> None:
        super().set_state(state)
        if SAMPLING_GENERATOR_STATE in state:
            self._sampling_generator.set_state(state[SAMPLING_GENERATOR_STATE])

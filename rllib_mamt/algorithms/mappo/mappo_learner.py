"""MA-PPO's torch learner.

``update()`` receives one on-policy train batch of joint rows laid out as
per-sub-env trajectories (:mod:`rllib_mamt.algorithms.mappo.trajectories`).
Before any gradient step it evaluates, without gradients, the sampling
policies' log-probabilities log pi_i_old(a_i | o_i), the critic's V_i(o) and
V_i(o') on the whole batch and computes GAE(lambda) advantages and the value
targets A + V(o) (:func:`~rllib_mamt.algorithms.mappo.losses.generalized_advantages`).
RLlib's ``Learner.update`` then runs ``num_epochs`` passes of (shuffled)
minibatches; each minibatch takes one step of every actor on its clipped
surrogate minus ``entropy_coeff`` times its entropy and one step of the
critic on the per-agent Huber losses averaged over agents, each optimiser's
gradient norm clipped on its own. Agents that have left an episode (alive
masks) count only where they acted and do not bootstrap after leaving.

Subclasses change the agents' trust regions through :meth:`clip_ranges`
(one PPO clip range per agent) and :meth:`trust_region_terms` (a per-agent
penalty added to each actor's loss and losses of further networks stepped
with the actors and the critic).
"""

import dataclasses
from typing import Dict, Optional

import gymnasium as gym
import numpy as np
import torch

from ray.rllib.core.learner.training_data import TrainingData
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.typing import ModuleID

from rllib_mamt.algorithms.mappo.losses import (
    clipped_surrogate_loss,
    generalized_advantages,
    huber_value_loss,
    masked_column_mean,
    standardize_columns,
)
from rllib_mamt.algorithms.mappo.trajectories import CONTINUES
from rllib_mamt.joint_replay_buffer import (
    ACTIONS,
    ALIVE,
    NEXT_ALIVE,
    REWARDS,
    TERMINATEDS,
    next_obs_key,
    obs_key,
)
from rllib_mamt.finite_updates import require_finite_update
from rllib_mamt.learner_optimizers import register_adam_groups
from rllib_mamt.central_module_spec import CENTRAL_MODULE_ID
from rllib_mamt.joint_learner import JointTorchLearner
from rllib_mamt.modules.actor import flat_size

POLICY_OPTIMIZER = "policy"
CRITIC_OPTIMIZER = "critic"
OLD_LOG_PROBS = "old_log_probs"
ADVANTAGES = "advantages"
VALUE_TARGETS = "value_targets"


def agent_actions(actor, joint_actions: torch.Tensor, index: int) -> torch.Tensor:
    """Agent ``index``'s taken actions from the joint ACTIONS column: (B,) int64
    indices for a Discrete space, or the (B, d) float vectors exactly as
    sampled (unclipped, zero padding of shorter Boxes removed) for a Box."""
    if isinstance(actor.action_space, gym.spaces.Box):
        return joint_actions[:, index, : flat_size(actor.action_space)].float()
    return joint_actions[:, index].long()


def policy_distribution(actor, observations: torch.Tensor):
    """An actor's policy pi(. | o) on a batch of observations, as the actor's
    RLlib action distribution (categorical for Discrete actions, diagonal
    Gaussian for Box actions)."""
    return actor.action_distribution(observations)


def policy_log_probs_and_entropy(actor, observations: torch.Tensor, actions: torch.Tensor):
    """(B,) log pi(a | o) of the taken actions and (B,) entropies of an actor's
    policy (the Gaussian's summed over the action dimensions)."""
    distribution = policy_distribution(actor, observations)
    return distribution.logp(actions), distribution.entropy()


def bootstrap_weights(terminateds: np.ndarray, next_alive: Optional[np.ndarray],
                      num_agents: int) -> np.ndarray:
    """(N, n) 1 where V_i(o') enters agent i's TD error: the episode did not
    terminate and agent i is still in it at o'."""
    weights = np.repeat((1.0 - terminateds)[:, None], num_agents, axis=1)
    return weights if next_alive is None else weights * next_alive


class MAPPOTorchLearner(JointTorchLearner):
    """Learner of MA-PPO: GAE on the whole batch, then PPO minibatch epochs."""

    def build(self) -> None:
        super().build()

    def configure_optimizers_for_module(self, module_id: ModuleID, config=None) -> None:
        module = self.module[module_id].unwrapped()
        if module_id == CENTRAL_MODULE_ID:
            groups = {CRITIC_OPTIMIZER: (list(module.parameters()), config.critic_lr)}
        else:
            groups = {POLICY_OPTIMIZER: (list(module.parameters()), config.actor_lr)}
        register_adam_groups(self, module_id, groups, config.adam_epsilon)

    def clip_ranges(self) -> torch.Tensor:
        """(n,) PPO clip range of every agent: ``clip_param`` for all (MA-PPO)."""
        return torch.full((len(self.agent_ids),), float(self.config.clip_param),
                          device=self._device)

    def trust_region_terms(self, data: Dict, distributions: list,
                           alive: Optional[torch.Tensor]):
        """((n,) penalty added to each actor's loss, scalar loss of networks
        other than the actors and the critic) on one minibatch, given the
        actors' policies on it with their graphs: (0, 0) for MA-PPO, whose
        trust region is the clip range alone."""
        return 0.0, 0.0

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        raise NotImplementedError(
            "MAPPO steps all actors and the critic together in "
            "_uncompiled_update(); the joint batch is not split per module."
        )

    def update(self, batch: Optional[MultiAgentBatch] = None, *,
               training_data: Optional[TrainingData] = None, **kwargs):
        """Adds the PPO targets to the whole train batch (given as ``batch``
        or, from a LearnerGroup, as ``training_data.batch``), then runs RLlib's
        minibatch epochs over it."""
        if training_data is not None and training_data.batch is not None:
            training_data = dataclasses.replace(
                training_data, batch=self.with_ppo_targets(training_data.batch)
            )
        elif batch is not None:
            batch = self.with_ppo_targets(batch)
        return super().update(batch=batch, training_data=training_data, **kwargs)

    @torch.no_grad()
    def with_ppo_targets(self, batch: MultiAgentBatch) -> MultiAgentBatch:
        """The batch with old log-probs, (standardised) GAE advantages and value
        targets per agent, and without the columns the minibatches do not use."""
        data = batch.policy_batches[CENTRAL_MODULE_ID]
        n = len(self.agent_ids)
        device = self._device

        def tensor(key):
            return torch.as_tensor(np.asarray(data[key]), device=device)

        alive = np.asarray(data[ALIVE], np.float32) if ALIVE in data else None
        next_alive = np.asarray(data[NEXT_ALIVE], np.float32) if NEXT_ALIVE in data else None
        critic = self._central().critic
        observations = [tensor(obs_key(k)) for k in range(n)]
        values = critic(observations, None if alive is None else tensor(ALIVE))
        next_values = critic(
            [tensor(next_obs_key(k)) for k in range(n)],
            None if next_alive is None else tensor(NEXT_ALIVE),
        )
        actions = tensor(ACTIONS)
        old_log_probs = torch.stack([
            policy_log_probs_and_entropy(
                self._actor(agent), observations[k],
                agent_actions(self._actor(agent), actions, k),
            )[0]
            for k, agent in enumerate(self.agent_ids)
        ], dim=-1)
        values = values.cpu().numpy().astype(np.float64)
        advantages = generalized_advantages(
            np.asarray(data[REWARDS], np.float64),
            values,
            next_values.cpu().numpy().astype(np.float64),
            bootstrap_weights(np.asarray(data[TERMINATEDS], np.float64), next_alive, n),
            np.asarray(data[CONTINUES]),
            self.config.gamma,
            self.config.lambda_,
        )
        value_targets = (advantages + values).astype(np.float32)
        if self.config.standardize_advantages:
            advantages = standardize_columns(advantages, alive)
        columns = {obs_key(k): np.asarray(data[obs_key(k)]) for k in range(n)}
        columns.update({
            ACTIONS: np.asarray(data[ACTIONS]),
            OLD_LOG_PROBS: old_log_probs.cpu().numpy(),
            ADVANTAGES: advantages,
            VALUE_TARGETS: value_targets,
        })
        if alive is not None:
            columns[ALIVE] = alive
        return MultiAgentBatch({CENTRAL_MODULE_ID: SampleBatch(columns)},
                               env_steps=batch.env_steps())

    def _uncompiled_update(self, batch: Dict, **kwargs):
        """One minibatch step of every actor and of the critic."""
        data = batch[CENTRAL_MODULE_ID]
        n = len(self.agent_ids)
        observations = [data[obs_key(k)] for k in range(n)]
        actions = data[ACTIONS]
        alive = data[ALIVE].float() if ALIVE in data else None
        modules = [self.module[module_id] for module_id in self.module.keys()]
        for module in modules:
            module.train()
        try:
            distributions = [
                policy_distribution(self._actor(agent), observations[k])
                for k, agent in enumerate(self.agent_ids)
            ]
            log_probs = torch.stack(
                [d.logp(agent_actions(self._actor(agent), actions, k))
                 for k, (agent, d) in enumerate(zip(self.agent_ids, distributions))],
                dim=-1,
            )
            entropies = masked_column_mean(
                torch.stack([d.entropy() for d in distributions], -1), alive
            )
            surrogate = clipped_surrogate_loss(
                log_probs, data[OLD_LOG_PROBS], data[ADVANTAGES], self.clip_ranges(), alive
            )
            penalties, auxiliary_loss = self.trust_region_terms(data, distributions, alive)
            actor_losses = surrogate - self.config.entropy_coeff * entropies + penalties
            values = self._central().critic(observations, alive)
            value_losses = huber_value_loss(values, data[VALUE_TARGETS],
                                            self.config.huber_delta, alive)
            critic_loss = value_losses.mean()
            self._step_all(actor_losses.sum() + critic_loss + auxiliary_loss)
        finally:
            for module in modules:
                module.eval()
        with torch.no_grad():
            log_ratio = log_probs - data[OLD_LOG_PROBS]
            clipped = ((log_ratio.exp() - 1.0).abs() > self.clip_ranges()).float()
            approx_kl = masked_column_mean(log_ratio.exp() - 1.0 - log_ratio, alive)
            clip_fraction = masked_column_mean(clipped, alive)
        losses = {CENTRAL_MODULE_ID: critic_loss.detach()}
        for k, agent in enumerate(self.agent_ids):
            losses[agent] = actor_losses[k].detach()
            self.metrics.log_dict(
                {
                    "policy_loss": surrogate[k].detach(),
                    "entropy": entropies[k].detach(),
                    "value_loss": value_losses[k].detach(),
                    "approx_kl": approx_kl[k],
                    "clip_fraction": clip_fraction[k],
                },
                key=agent,
                window=1,
            )
        return {}, losses, {}

    def _optimizer_groups(self):
        """(module id, optimizer name, max gradient norm) of every optimiser."""
        groups = [(agent, POLICY_OPTIMIZER, self.config.actor_grad_clip)
                  for agent in self.agent_ids]
        groups.append((CENTRAL_MODULE_ID, CRITIC_OPTIMIZER, self.config.critic_grad_clip))
        return groups

    def _step_all(self, loss: torch.Tensor) -> None:
        """One step of every optimiser on ``loss`` (the actors' and the critic's
        terms share no parameters), each gradient norm clipped on its own."""
        groups = []
        for module_id, name, max_norm in self._optimizer_groups():
            optimizer = self.get_optimizer(module_id, name)
            params = [self._params[pid] for pid in self._optimizer_parameters[optimizer]]
            optimizer.zero_grad(set_to_none=True)
            groups.append((module_id, name, optimizer, params, max_norm))
        loss.backward()
        norms = {}
        for module_id, name, _, params, max_norm in groups:
            gradients = [p.grad for p in params if p.grad is not None]
            if max_norm:
                norms[(module_id, name)] = torch.nn.utils.clip_grad_norm_(params, max_norm)
            elif gradients:
                norms[(module_id, name)] = torch.nn.utils.get_total_norm(gradients)
        require_finite_update(loss, norms)
        for _, _, optimizer, _, _ in groups:
            optimizer.step()

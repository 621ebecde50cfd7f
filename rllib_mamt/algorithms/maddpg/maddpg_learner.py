"""MADDPG's torch learner (Lowe et al., 2017; as maddpg-pytorch).

One learner update is one pass of the reference code's inner loop: for each
agent i in the sorted order, on agent i's own minibatch (the joint batch holds
n consecutive minibatches of ``train_batch_size_per_learner`` rows),

1. critic step: minimise mean_b (Q_i(o, a) - y_i)^2 with
   y_i = r_i + gamma * (1 - d) * Q'_i(o', a'_1..a'_n), where
   a'_j = onehot(argmax mu'_j(o'_j)) from the target actors (no noise) and a
   are the replayed actions as one-hot vectors; gradient norm clipped to
   ``critic_grad_clip`` (10 * n);
2. actor step: minimise -mean_b Q_i(o, a_1..a_i..a_n) + c * mean_b mean(l_i^2)
   with l_i = mu_i(o_i) the logits, a_i the straight-through Gumbel-softmax
   sample of l_i (:func:`~rllib_mamt.algorithms.maddpg.losses.straight_through_gumbel_softmax`)
   and a_j = onehot(argmax mu_j(o_j)) of the other agents' current actors
   (agents before i have already stepped in this update, as in the reference
   loop); gradient norm clipped to ``actor_grad_clip`` (0.5);

then all target critics and target actors are soft-updated with ``tau``.

With Box actions (deterministic tanh actors) every onehot(argmax l) above is
tanh(l) instead, the actor's own action a_i = tanh(l_i) is differentiated
directly (no Gumbel-softmax), the L2 penalty is on tanh(l_i) (the reference
code's penalty on its actor's tanh output), and replayed actions reach the
critic mapped from the Box's bounds to [-1, 1].
Agents that have left an episode (alive masks of the joint buffer) count only
where they acted, take the no-op action 0 and are not bootstrapped after they
terminated, as in MAMT's learner.
"""

from typing import Dict, List

import torch

from ray.rllib.utils.typing import ModuleID

from rllib_mamt.algorithms.maddpg.losses import (
    sample_gumbel,
    straight_through_gumbel_softmax,
    td_targets,
)
from rllib_mamt.alive_masks import alive_masks, masked_mean
from rllib_mamt.joint_replay_buffer import (
    ACTIONS,
    REWARDS,
    TERMINATEDS,
    next_obs_key,
    obs_key,
)
from rllib_mamt.finite_updates import require_finite_update
from rllib_mamt.learner_optimizers import register_adam_groups
from rllib_mamt.learner_seeding import learner_sampling_seed
from rllib_mamt.target_networks import soft_update_
from rllib_mamt.central_module_spec import CENTRAL_MODULE_ID
from rllib_mamt.joint_learner import JointTorchLearner

POLICY_OPTIMIZER = "policy"
SAMPLING_GENERATOR_STATE = "maddpg_sampling_generator"


def critic_optimizer_name(agent_id: str) -> str:
    """Name of agent ``agent_id``'s critic optimiser in the central module."""
    return f"critic_{agent_id}"


def with_no_op_for_dead(actions: List[torch.Tensor], alive,
                        continuous: bool = False) -> List[torch.Tensor]:
    """Critic-input actions with a fixed no-op where an agent is dead: the
    one-hot of action 0, or the zero vector for Box actions."""
    if alive is None:
        return actions
    fixed = []
    for k, action in enumerate(actions):
        no_op = torch.zeros_like(action)
        if not continuous:
            no_op[:, 0] = 1.0
        fixed.append(torch.where(alive[:, k : k + 1] > 0.5, action, no_op))
    return fixed


@torch.no_grad()
def critic_targets(central, actors, next_observations, rewards, not_terminated,
                   next_alive, gamma: float, agent_index: int) -> torch.Tensor:
    """(B,) y_i = r_i + gamma * (1 - d) * Q'_i(o', onehot(argmax mu'_1(o'_1)), ...)
    (tanh(mu'_j(o'_j)) in place of the one-hot for Box actions).

    Args:
        central: The :class:`MADDPGCentralModule` (target actors and critics).
        actors: The online actor modules (their input normalisation, with
            running statistics, feeds the target actors).
        next_observations: Per agent (B, |o_j|) o'_j.
        rewards: (B, n) r.
        not_terminated: (B,) 1 - d.
        next_alive: (B, n) alive mask at o', or None (all alive).
        gamma: Discount.
        agent_index: i.
    """
    next_actions = [
        central.policy_actions(target(actor.normalized_observations(obs)))
        for target, actor, obs in zip(central.target_actors, actors, next_observations)
    ]
    next_actions = with_no_op_for_dead(next_actions, next_alive, central.continuous)
    next_q = central.target_critics[agent_index](next_observations, next_actions)
    bootstrap = not_terminated
    if next_alive is not None:
        bootstrap = bootstrap * next_alive[:, agent_index]
    return td_targets(rewards[:, agent_index], bootstrap, next_q, gamma)


class MADDPGTorchLearner(JointTorchLearner):
    """Learner of MADDPG: per-agent critic and actor steps, then soft target updates."""

    def build(self) -> None:
        super().build()
        central = self._central()
        self._sampling_generator = torch.Generator(device=self._device)
        self._sampling_generator.manual_seed(learner_sampling_seed(self.config.seed, 0))
        with torch.no_grad():
            for target, agent in zip(central.target_actors, self.agent_ids):
                target.load_state_dict(self._actor(agent).policy_network.state_dict())

    def configure_optimizers_for_module(self, module_id: ModuleID, config=None) -> None:
        module = self.module[module_id].unwrapped()
        if module_id == CENTRAL_MODULE_ID:
            groups = {
                critic_optimizer_name(agent): (list(critic.parameters()), config.critic_lr)
                for agent, critic in zip(module.agent_ids, module.critics)
            }
        else:
            groups = {POLICY_OPTIMIZER: (list(module.parameters()), config.actor_lr)}
        register_adam_groups(self, module_id, groups, config.adam_epsilon)

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        raise NotImplementedError(
            "MADDPG steps each agent's critic and actor in turn in "
            "_uncompiled_update(); the joint batch is not split per module."
        )

    def _uncompiled_update(self, batch: Dict, **kwargs):
        """One update: for each agent, a critic then an actor step on its own
        minibatch; then the soft target updates (see the module docstring)."""
        data = batch[CENTRAL_MODULE_ID]
        n = len(self.agent_ids)
        rows = data[ACTIONS].shape[0]
        if rows % n:
            raise ValueError(
                f"MADDPG's learner got {rows} joint rows, not a multiple of the "
                f"{n} agents' minibatches; sample n_agents * batch rows per update."
            )
        per_agent = rows // n
        modules = [self.module[module_id] for module_id in self.module.keys()]
        for module in modules:
            module.train()
        losses = {}
        try:
            for k, agent in enumerate(self.agent_ids):
                chunk = {
                    key: value[k * per_agent : (k + 1) * per_agent]
                    for key, value in data.items()
                }
                inputs = self._batch_inputs(chunk)
                critic_loss = self._critic_step(k, *inputs)
                losses[agent] = self._actor_step(k, *inputs)
                losses.setdefault(CENTRAL_MODULE_ID, 0.0)
                losses[CENTRAL_MODULE_ID] = losses[CENTRAL_MODULE_ID] + critic_loss
        finally:
            for module in modules:
                module.eval()
        self._update_targets()
        return {}, losses, {}

    def _batch_inputs(self, data):
        """(observations, next observations, actions, rewards, 1 - d, alive,
        next_alive) of a joint minibatch."""
        n = len(self.agent_ids)
        alive, next_alive = alive_masks(data)
        return (
            [data[obs_key(k)] for k in range(n)],
            [data[next_obs_key(k)] for k in range(n)],
            data[ACTIONS],
            data[REWARDS].float(),
            1.0 - data[TERMINATEDS].float(),
            alive,
            next_alive,
        )

    def _critic_step(self, k, observations, next_observations, actions, rewards,
                     not_terminated, alive, next_alive) -> torch.Tensor:
        central = self._central()
        actors = [self._actor(agent) for agent in self.agent_ids]
        targets = critic_targets(
            central, actors, next_observations, rewards, not_terminated, next_alive,
            self.config.gamma, k,
        )
        replayed = with_no_op_for_dead(
            central.replayed_actions(actions), alive, central.continuous
        )
        q_values = central.critics[k](observations, replayed)
        agent_alive = None if alive is None else alive[:, k]
        loss = masked_mean((q_values - targets).pow(2), agent_alive)
        agent = self.agent_ids[k]
        self._step(CENTRAL_MODULE_ID, critic_optimizer_name(agent), loss,
                   self.config.resolved_critic_grad_clip())
        self.metrics.log_dict(
            {
                "critic_loss": loss.detach(),
                "q_mean": q_values.mean().detach(),
                "q_target_mean": targets.mean(),
            },
            key=agent,
            window=1,
        )
        return loss.detach()

    def _actor_step(self, k, observations, next_observations, actions, rewards,
                    not_terminated, alive, next_alive) -> torch.Tensor:
        config = self.config
        central = self._central()
        agent = self.agent_ids[k]
        actor = self._actor(agent)
        logits = actor.action_logits(observations[k])
        if central.continuous:
            own_action = torch.tanh(logits)
            penalized = own_action
        else:
            noise = sample_gumbel(logits.shape, self._sampling_generator, logits.device)
            own_action = straight_through_gumbel_softmax(
                logits, noise, config.gumbel_temperature
            )
            penalized = logits
        joint_actions = []
        with torch.no_grad():
            for j, other in enumerate(self.agent_ids):
                joint_actions.append(
                    own_action if j == k
                    else central.policy_actions(
                        self._actor(other).action_logits(observations[j])
                    )
                )
        joint_actions = with_no_op_for_dead(joint_actions, alive, central.continuous)
        q_values = central.critics[k](observations, joint_actions)
        agent_alive = None if alive is None else alive[:, k]
        policy_q = masked_mean(q_values, agent_alive)
        logit_penalty = config.actor_logit_regularization * masked_mean(
            penalized.pow(2).mean(-1), agent_alive
        )
        loss = -policy_q + logit_penalty
        self._step(agent, POLICY_OPTIMIZER, loss, config.actor_grad_clip)
        # The actor's backward pass also reached critic i's parameters; its
        # optimiser clears them before its own next step, drop them now.
        self.get_optimizer(CENTRAL_MODULE_ID, critic_optimizer_name(agent)).zero_grad(
            set_to_none=True
        )
        self.metrics.log_dict(
            {
                "actor_loss": loss.detach(),
                "policy_q_mean": policy_q.detach(),
                "logit_penalty": logit_penalty.detach(),
            },
            key=agent,
            window=1,
        )
        return loss.detach()

    def _step(self, module_id, name, loss, max_norm) -> None:
        """One gradient step of one optimiser on ``loss`` (norm-clipped)."""
        optimizer = self.get_optimizer(module_id, name)
        params = [self._params[pid] for pid in self._optimizer_parameters[optimizer]]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        gradients = [p.grad for p in params if p.grad is not None]
        if max_norm:
            norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        else:
            norm = torch.nn.utils.get_total_norm(gradients)
        require_finite_update(loss, {(module_id, name): norm})
        optimizer.step()

    @torch.no_grad()
    def _update_targets(self) -> None:
        """Soft-updates every target critic and target actor (tau)."""
        central = self._central()
        tau = self.config.tau
        soft_update_(central.target_critics.parameters(), central.critics.parameters(), tau)
        central.copy_normalization_statistics_()
        for target, agent in zip(central.target_actors, self.agent_ids):
            soft_update_(target.parameters(), self._actor(agent).policy_network.parameters(), tau)
        central.num_updates += 1

    def get_state(self, *args, **kwargs):
        state = super().get_state(*args, **kwargs)
        state[SAMPLING_GENERATOR_STATE] = self._sampling_generator.get_state()
        return state

    def set_state(self, state) -> None:
        super().set_state(state)
        if SAMPLING_GENERATOR_STATE in state:
            self._sampling_generator.set_state(state[SAMPLING_GENERATOR_STATE])

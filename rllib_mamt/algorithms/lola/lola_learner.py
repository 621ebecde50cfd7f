"""LOLA(+DQN)'s torch learner (see :mod:`rllib_mamt.algorithms.lola` for the
definition). One learner update on one joint minibatch:

1. Q step, for each agent i: minimise mean_b (Q_i(o)[a_0, a_1] - y_i)^2 with
   y_i = r_i + gamma * (1 - d) * pi_0(o'_0)^T Q'_i(o') pi_1(o'_1)
   (target Q-network Q'_i, current policies, no gradient through y_i);
   gradient norm clipped to ``grad_clip`` (10 * n);
2. LOLA policy step, both agents at once: with the fresh Q-matrices held fixed,
   V_i(theta_0, theta_1) = mean_b pi_0(o_0; theta_0)^T Q_i(o) pi_1(o_1; theta_1),
   and each agent ascends its LOLA gradient
   (:func:`~rllib_mamt.algorithms.lola.losses.lola_gradients`), both taken
   before either agent steps; gradient norm clipped to ``grad_clip``;
3. soft update of both target Q-networks with ``tau``.

Agents that have left an episode (alive masks of the joint buffer) take the
no-op action 0 in every expectation, count only where they acted and are not
bootstrapped after they terminated, as in MADDPG's learner.
"""

from typing import Dict

import torch
from torch.func import functional_call

from ray.rllib.utils.typing import ModuleID

from rllib_mamt.algorithms.lola.losses import (
    expected_td_targets,
    joint_action_values,
    lola_gradients,
)
from rllib_mamt.algorithms.maddpg.maddpg_learner import with_no_op_for_dead
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
from rllib_mamt.target_networks import soft_update_
from rllib_mamt.central_module_spec import CENTRAL_MODULE_ID
from rllib_mamt.joint_learner import JointTorchLearner

POLICY_OPTIMIZER = "policy"


def q_optimizer_name(agent_id: str) -> str:
    """Name of agent ``agent_id``'s Q-network optimiser in the central module."""
    return f"q_{agent_id}"


class LOLATorchLearner(JointTorchLearner):
    """Learner of LOLA(+DQN): TD steps of both Q-networks, then simultaneous
    LOLA steps of both policies, then soft target updates."""

    def build(self) -> None:
        super().build()

    def configure_optimizers_for_module(self, module_id: ModuleID, config=None) -> None:
        module = self.module[module_id].unwrapped()
        if module_id == CENTRAL_MODULE_ID:
            groups = {
                q_optimizer_name(agent): (list(network.parameters()), config.q_lr)
                for agent, network in zip(module.agent_ids, module.q_networks)
            }
        else:
            groups = {POLICY_OPTIMIZER: (list(module.parameters()), config.policy_lr)}
        register_adam_groups(self, module_id, groups, config.adam_epsilon)

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        raise NotImplementedError(
            "LOLA steps the Q-networks and then both policies together in "
            "_uncompiled_update(); the joint batch is not split per module."
        )

    def _uncompiled_update(self, batch: Dict, **kwargs):
        """One update on one joint minibatch (see the module docstring)."""
        data = batch[CENTRAL_MODULE_ID]
        modules = [self.module[module_id] for module_id in self.module.keys()]
        for module in modules:
            module.train()
        try:
            alive, next_alive = alive_masks(data)
            observations = [data[obs_key(k)] for k in range(2)]
            next_observations = [data[next_obs_key(k)] for k in range(2)]
            actors = [self._actor(agent) for agent in self.agent_ids]
            normalized = [a.normalized_observations(o) for a, o in zip(actors, observations)]
            with torch.no_grad():
                next_probs = with_no_op_for_dead(
                    [torch.softmax(a.action_logits(o), -1)
                     for a, o in zip(actors, next_observations)],
                    next_alive,
                )
            losses = {CENTRAL_MODULE_ID: 0.0}
            for k in range(2):
                losses[CENTRAL_MODULE_ID] = losses[CENTRAL_MODULE_ID] + self._q_step(
                    k, data, observations, next_observations, next_probs, alive, next_alive
                )
            losses.update(self._lola_step(normalized, observations, alive))
        finally:
            for module in modules:
                module.eval()
        self._update_targets()
        return {}, losses, {}

    def _q_step(self, k, data, observations, next_observations, next_probs, alive,
                next_alive) -> torch.Tensor:
        """One TD step of agent k's Q-network; returns its loss."""
        central = self._central()
        bootstrap = 1.0 - data[TERMINATEDS].float()
        if next_alive is not None:
            bootstrap = bootstrap * next_alive[:, k]
        with torch.no_grad():
            targets = expected_td_targets(
                data[REWARDS].float()[:, k], bootstrap, next_probs[0],
                central.target_q_networks[k](next_observations), next_probs[1],
                self.config.gamma,
            )
        actions = data[ACTIONS].long()
        q_matrix = central.q_networks[k](observations)
        q_taken = q_matrix[torch.arange(q_matrix.shape[0]), actions[:, 0], actions[:, 1]]
        agent_alive = None if alive is None else alive[:, k]
        loss = masked_mean((q_taken - targets).pow(2), agent_alive)
        name = q_optimizer_name(self.agent_ids[k])
        optimizer = self.get_optimizer(CENTRAL_MODULE_ID, name)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = list(central.q_networks[k].parameters())
        norm = torch.nn.utils.clip_grad_norm_(params, self.config.resolved_grad_clip())
        require_finite_update(loss, {(CENTRAL_MODULE_ID, name): norm})
        optimizer.step()
        self.metrics.log_dict(
            {"q_loss": loss.detach(), "q_mean": q_taken.mean().detach(),
             "q_target_mean": targets.mean()},
            key=self.agent_ids[k], window=1,
        )
        return loss.detach()

    def policy_values(self, normalized, observations, alive):
        """``(value_of, parameters)`` of the policy step: the two policies'
        parameter lists and ``value_of(i, (params_0, params_1))``, agent i's
        V_i = mean_b pi_0(o_0)^T Q_i(o) pi_1(o_1) under those parameters with
        the current Q-matrices held fixed (the input of
        :func:`~rllib_mamt.algorithms.lola.losses.lola_gradients`)."""
        central = self._central()
        with torch.no_grad():
            q_matrices = [network(observations) for network in central.q_networks]
        networks = [self._actor(agent).policy_network for agent in self.agent_ids]
        names = [[name for name, _ in net.named_parameters()] for net in networks]
        parameters = tuple([p for _, p in net.named_parameters()] for net in networks)

        def value_of(i, params):
            probs = [
                torch.softmax(functional_call(net, dict(zip(keys, p)), (inputs,)), -1)
                for net, keys, p, inputs in zip(networks, names, params, normalized)
            ]
            probs = with_no_op_for_dead(probs, alive)
            values = joint_action_values(probs[0], q_matrices[i], probs[1])
            return masked_mean(values, None if alive is None else alive[:, i])

        return value_of, parameters

    def _lola_step(self, normalized, observations, alive) -> Dict[str, torch.Tensor]:
        """Simultaneous LOLA steps of both policies on V_i from the Q-matrices."""
        value_of, parameters = self.policy_values(normalized, observations, alive)
        values = [value_of(i, parameters).detach() for i in range(2)]
        gradients = lola_gradients(value_of, parameters, self.config.lookahead_lr)
        norms = {}
        for agent, params, ascent in zip(self.agent_ids, parameters, gradients):
            for parameter, direction in zip(params, ascent):
                parameter.grad = -direction.detach()
            norms[(agent, POLICY_OPTIMIZER)] = torch.nn.utils.clip_grad_norm_(
                params, self.config.resolved_grad_clip()
            )
        require_finite_update(-(values[0] + values[1]), norms)
        losses = {}
        for k, agent in enumerate(self.agent_ids):
            self.get_optimizer(agent, POLICY_OPTIMIZER).step()
            self.get_optimizer(agent, POLICY_OPTIMIZER).zero_grad(set_to_none=True)
            losses[agent] = -values[k]
            self.metrics.log_dict(
                {"policy_value": values[k],
                 "policy_gradient_norm": norms[(agent, POLICY_OPTIMIZER)].detach()},
                key=agent, window=1,
            )
        return losses

    @torch.no_grad()
    def _update_targets(self) -> None:
        """Soft-updates both target Q-networks (tau)."""
        central = self._central()
        soft_update_(central.target_q_networks.parameters(), central.q_networks.parameters(),
                     self.config.tau)
        central.copy_normalization_statistics_()
        central.num_updates += 1

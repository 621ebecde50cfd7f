"""MAMT's torch learner: critic (Eq. 9) and mirror-descent actor (Eq. 10) updates.

One learner update = one gradient step of every optimiser on one minibatch of
joint transitions, followed by the soft update of the targets and, every m
updates, the refresh of the m-update-old actors (Algorithm 2, lines 10-21).
As in MAAC (``update_order="critic_first"``), the critic steps first and the
actor and trust-region losses are then built with the updated critic;
``"simultaneous"`` builds every loss from the pre-step parameters.

Each parameter group has its own optimiser and its own loss (critic, one actor
per agent); the losses are built so that no loss reaches another group's
parameters (critic values are detached in the actor losses, targets are
computed without gradient), so one backward pass of their sum gives every group
exactly the gradient of its own loss.

Details that follow MAAC (Iqbal & Sha, 2019): the attention-logit penalty
(:func:`rllib_mamt.algorithms.mamt.losses.attention_logit_penalty`), Adam weight decay 1e-3 on
the critic, the 1/n gradient scaling of every module all agents share (the
attention projections and the state-action encoders), the critic target's
entropy term (``critic_target_entropy``).

Distributed learners: RLlib's DDP averages gradients only for computation inside
``forward_train`` (DESIGN.md §4), and its hooks reject the extra backward passes
of the TRD-Net's fast timescale. So this learner does not wrap modules in DDP:
it broadcasts rank 0's parameters once at build time and all-reduces (averages)
every gradient explicitly before clipping and stepping; all learners therefore
take identical steps.
"""

import contextlib
from typing import Any, Dict, List, Optional

import torch
import torch.distributed as dist
from torch.nn import functional as F

from ray.rllib.utils.typing import ModuleID, ParamDict, TensorType

from rllib_mamt.alive_masks import alive_masks, masked_mean, no_op_for_dead
from rllib_mamt.distributed_mean import average_across_processes_, world_size
from rllib_mamt.joint_replay_buffer import (
    ACTIONS,
    REWARDS,
    TERMINATEDS,
    next_obs_key,
    obs_key,
)
from rllib_mamt.learner_precision import forward_precision, full_precision
from rllib_mamt.algorithms.mamt.losses import (
    attention_logit_penalty,
    counterfactual_baseline,
    critic_targets,
    entropy,
    tsallis_relative_entropy,
)
from rllib_mamt.modules.actor import average_running_statistics_across_processes_
from rllib_mamt.central_module_spec import CENTRAL_MODULE_ID
from rllib_mamt.finite_updates import require_finite_update
from rllib_mamt.learner_optimizers import fused_adam_available
from rllib_mamt.learner_seeding import learner_sampling_seed
from rllib_mamt.target_networks import soft_update_
from rllib_mamt.joint_learner import JointTorchLearner
from rllib_mamt.algorithms.mamt.trust_region_learning import (
    DELTA_OPTIMIZER,
    LEARNED_TRUST_REGION_MODES,
    OPPONENT_OPTIMIZER,
    TRD_OPTIMIZER,
    TrustRegionLearning,
    make_delta_optimizer,
)

CRITIC_OPTIMIZER = "critic"
POLICY_OPTIMIZER = "policy"


class MAMTTorchLearner(TrustRegionLearning, JointTorchLearner):
    """Learner for the MAMT family (modes ``none`` = MAAC, ``equal`` = MAMD, ...)."""

    def build(self) -> None:
        super().build()
        central = self._central()
        self._losses_by_optimizer: Dict[tuple, torch.Tensor] = {}
        self._critic_stepped = False
        self._sampling_generator = torch.Generator(device=self._device)
        rank = dist.get_rank() if self._distributed_world_size() > 1 else 0
        self._sampling_generator.manual_seed(learner_sampling_seed(self.config.seed, rank))
        self._broadcast_initial_state()
        actors = [self._actor(agent).policy_network for agent in self.agent_ids]
        for copies in (central.target_actors, central.old_actors):
            for copy, actor in zip(copies, actors):
                copy.load_state_dict(actor.state_dict())

    def _make_modules_ddp_if_necessary(self) -> None:
        """No DDP wrapping: gradients are averaged explicitly (see module doc)."""

    @staticmethod
    def _distributed_world_size() -> int:
        return world_size()

    @torch.no_grad()
    def _broadcast_initial_state(self) -> None:
        """Gives every learner rank 0's initial parameters and buffers."""
        if self._distributed_world_size() < 2:
            return
        for module_id in sorted(self.module.keys()):
            for tensor in self.module[module_id].state_dict().values():
                dist.broadcast(tensor, src=0)

    def _uncompiled_update(self, batch: Dict, **kwargs):
        """One update: all losses from the joint batch, then one optimiser step each.

        MAMT needs no ``forward_train`` pass: every network is evaluated inside
        :meth:`compute_losses`, where the joint batch is available. Modules
        are in train mode only during the update, so only its differentiated
        forwards normalise inputs with batch statistics (``InputNormalization``).
        The losses are built under :meth:`_forward_precision`
        (``learner_precision``); every backward pass runs outside it.
        """
        try:
            with self.train_mode():
                if self.config.update_order == "critic_first":
                    with self._forward_precision():
                        critic_loss = self._critic_loss_on(batch)
                    self._step_one_optimizer(CENTRAL_MODULE_ID, CRITIC_OPTIMIZER, critic_loss)
                    self._critic_stepped = True
                with self._forward_precision():
                    loss_per_module = self.compute_losses(fwd_out={}, batch=batch)
                gradients = self.compute_gradients(loss_per_module)
                self.apply_gradients(self.postprocess_gradients(gradients))
        finally:
            self._critic_stepped = False
        return {}, loss_per_module, {}

    @contextlib.contextmanager
    def train_mode(self):
        """Every submodule in train mode inside the block, eval mode after it
        (the update's mode protocol; see :meth:`_uncompiled_update`)."""
        modules = self._all_submodules()
        for module in modules:
            module.training = True
        try:
            yield
        finally:
            for module in modules:
                module.training = False

    def _forward_precision(self):
        """Context of the update's forward passes: autocast to bf16 on the
        learner's device for ``learner_precision="bfloat16"``, else none
        (:mod:`rllib_mamt.learner_precision`)."""
        return forward_precision(self.config.learner_precision, self._device)

    def _all_submodules(self) -> List[torch.nn.Module]:
        """Every submodule of every RLModule, as ``train()``/``eval()`` would
        visit them; the flat list is cached per set of RLModules, so switching
        modes costs one attribute per submodule instead of a recursive walk."""
        tops = [self.module[module_id] for module_id in self.module.keys()]
        cached = getattr(self, "_submodules_of", [])
        if len(cached) != len(tops) or any(a is not b for a, b in zip(cached, tops)):
            self._submodules_of = tops
            self._submodules = [sub for top in tops for sub in top.modules()]
        return self._submodules

    def _critic_loss_on(self, batch: Dict) -> torch.Tensor:
        """The critic's loss (Eq. 9) on ``batch``, for the critic-first order;
        logs the critic metrics and keeps the loss for the results."""
        inputs = self._batch_inputs(batch[CENTRAL_MODULE_ID])
        loss, metrics = self._critic_loss(
            self._central(), [self._actor(agent) for agent in self.agent_ids], *inputs
        )
        self.metrics.log_dict(metrics, key=CENTRAL_MODULE_ID, window=1)
        self._stepped_critic_loss = loss.detach()
        return loss

    def _batch_inputs(self, data):
        """The critic loss's inputs from a joint batch, in ``_critic_loss`` order."""
        n = len(self.agent_ids)
        alive, next_alive = alive_masks(data)
        return (
            [data[obs_key(k)] for k in range(n)],
            [data[next_obs_key(k)] for k in range(n)],
            data[ACTIONS].long(),
            data[REWARDS].float(),
            1.0 - data[TERMINATEDS].float(),
            1.0 / self.config.reward_scale,
            alive,
            next_alive,
        )

    def configure_optimizers_for_module(self, module_id: ModuleID, config=None) -> None:
        module = self.module[module_id].unwrapped()
        weight_decay = {CRITIC_OPTIMIZER: config.critic_weight_decay}
        if module_id == CENTRAL_MODULE_ID:
            groups = {CRITIC_OPTIMIZER: (list(module.critic.parameters()), config.critic_lr)}
            if module.trd_net is not None:
                groups[TRD_OPTIMIZER] = (list(module.trd_net.parameters()), config.trd_lr)
                groups[DELTA_OPTIMIZER] = ([module.log_trust_region_deltas], config.delta_lr)
            if module.opponent_models is not None:
                groups[OPPONENT_OPTIMIZER] = (
                    list(module.opponent_models.parameters()), config.opponent_model_lr
                )
        else:
            groups = {POLICY_OPTIMIZER: (list(module.parameters()), config.actor_lr)}
        for name, (params, lr) in groups.items():
            if name == DELTA_OPTIMIZER:
                optimizer = make_delta_optimizer(
                    params, config.trust_region_update, config.adam_epsilon
                )
            else:
                optimizer = torch.optim.Adam(
                    params, betas=(0.9, 0.999), eps=config.adam_epsilon,
                    weight_decay=weight_decay.get(name, 0.0), fused=fused_adam_available(params),
                )
            self.register_optimizer(
                module_id=module_id,
                optimizer_name=name,
                optimizer=optimizer,
                params=params,
                lr_or_lr_schedule=lr,
            )

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        raise NotImplementedError(
            "MAMT computes all losses jointly in compute_losses(); the joint batch "
            "is not split per module."
        )

    def compute_losses(
        self, *, fwd_out: Dict[str, Any], batch: Dict[str, Any]
    ) -> Dict[str, Any]:
        config = self.config
        central = self._central()
        inputs = self._batch_inputs(batch[CENTRAL_MODULE_ID])
        observations, _, actions, _, _, alpha, alive, _ = inputs

        actors = [self._actor(agent) for agent in self.agent_ids]
        normalized = [
            actor.normalized_observations(obs) for actor, obs in zip(actors, observations)
        ]
        logits = [actor.policy_network(x).float() for actor, x in zip(actors, normalized)]
        log_probs = [F.log_softmax(x, dim=-1) for x in logits]
        probs = [lp.exp() for lp in log_probs]

        if self._critic_stepped:
            self._losses_by_optimizer = {}
            losses = {CENTRAL_MODULE_ID: self._stepped_critic_loss}
        else:
            critic_loss, critic_metrics = self._critic_loss(central, actors, *inputs)
            self._losses_by_optimizer = {(CENTRAL_MODULE_ID, CRITIC_OPTIMIZER): critic_loss}
            losses = {CENTRAL_MODULE_ID: critic_loss}
            self.metrics.log_dict(critic_metrics, key=CENTRAL_MODULE_ID, window=1)

        with torch.no_grad():
            sampled = torch.stack(
                [
                    torch.multinomial(p, 1, generator=self._sampling_generator).squeeze(-1)
                    for p in probs
                ],
                dim=-1,
            )
            sampled = no_op_for_dead(sampled, alive)
            q_all_actions, _ = central.critic(observations, sampled, alive)
            old_log_probs = [
                F.log_softmax(old(x).float(), dim=-1)
                for old, x in zip(central.old_actors, normalized)
            ]
            old_probs = [lp.exp() for lp in old_log_probs]
        learned = config.trust_region_mode in LEARNED_TRUST_REGION_MODES
        hypergradient = learned and config.trust_region_update == "hypergradient"
        deltas = central.trust_region_deltas()
        if hypergradient:  # delta's gradient is the hypergradient, not D_q/delta^2
            deltas = deltas.detach()
        rows = min(config.coordination_batch_size or actions.shape[0], actions.shape[0])
        actor_terms = ([], [], [], [])
        constrained = torch.isfinite(deltas).tolist()
        for k, agent in enumerate(self.agent_ids):
            agent_alive = None if alive is None else alive[:, k]
            taken = sampled[:, k : k + 1]
            log_prob_taken = log_probs[k].gather(-1, taken).squeeze(-1)
            advantage = q_all_actions[k].gather(-1, taken).squeeze(-1) - (
                counterfactual_baseline(probs[k].detach(), q_all_actions[k])
            )
            entropy_weight = alpha if (
                config.mirror_descent_entropy or not constrained[k]
            ) else 0.0
            policy_target = (entropy_weight * log_prob_taken - advantage).detach()
            policy_gradient_loss = masked_mean(log_prob_taken * policy_target, agent_alive)
            logit_penalty = config.actor_logit_regularization * masked_mean(
                logits[k].pow(2).mean(-1), agent_alive
            )
            divergence = masked_mean(
                tsallis_relative_entropy(probs[k], old_probs[k], config.tsallis_q),
                agent_alive,
            )
            trust_region_term = divergence / deltas[k] if constrained[k] else divergence * 0.0
            if hypergradient:
                # A separate forward on the coordination rows, so that the
                # hypergradients' backward passes cover those rows only.
                sub_alive = None if agent_alive is None else agent_alive[:rows]
                sub_log_probs = F.log_softmax(
                    actors[k].policy_network(normalized[k][:rows]).float(), dim=-1
                )
                sub_log_prob_taken = sub_log_probs.gather(-1, taken[:rows]).squeeze(-1)
                actor_terms[0].append(masked_mean(
                    sub_log_prob_taken * policy_target[:rows], sub_alive
                ))
                actor_terms[1].append(masked_mean(tsallis_relative_entropy(
                    sub_log_probs.exp(), old_probs[k][:rows], config.tsallis_q
                ), sub_alive))
                actor_terms[2].append(list(actors[k].policy_network.parameters()))
                actor_terms[3].append(sub_log_probs)
            actor_loss = policy_gradient_loss + logit_penalty + trust_region_term
            self._losses_by_optimizer[(agent, POLICY_OPTIMIZER)] = actor_loss
            losses[agent] = actor_loss
            with torch.no_grad():
                kl = (probs[k] * (log_probs[k] - old_log_probs[k])).sum(-1).mean()
            self.metrics.log_dict(
                {
                    "actor_loss": actor_loss.detach(),
                    "policy_gradient_loss": policy_gradient_loss.detach(),
                    "entropy": entropy(probs[k], log_probs[k]).mean().detach(),
                    "kl_to_old_policy": kl,
                    "tsallis_divergence_to_old_policy": divergence.detach(),
                    "trust_region_delta": deltas[k].detach(),
                    "advantage_abs_mean": advantage.abs().mean(),
                },
                key=agent,
                window=1,
            )
        if learned:
            for name, loss in self._trust_region_decomposition_losses(
                central, observations, actions, log_probs, old_log_probs, alive,
                actor_terms if hypergradient else None,
            ).items():
                self._losses_by_optimizer[(CENTRAL_MODULE_ID, name)] = loss
        return losses

    def _critic_loss(
        self, central, actors, observations, next_observations, actions, rewards,
        not_terminated, alpha, alive=None, next_alive=None,
    ):
        """Eq. 9: sum_i E[(Q_i(o, a) - y_i)^2] plus MAAC's attention-logit penalty.

        With ``critic_target_entropy="maac"``: y_i = r_i + gamma * (1 - d) *
        E_{a'_i ~ pi_bar_i}[Q_bar_i(o', a'_i, a'_-i)] - alpha * E_{a'_i ~
        pi_bar_i}[log pi_bar_i(a'_i | o'_i)]; with ``"paper"``: y_i = r_i +
        gamma * (1 - d) * E_{a'_i ~ pi_bar_i}[Q_bar_i(o', a'_i, a'_-i) - alpha *
        log pi_i(a'_i | o'_i)]. a'_-i is sampled from the target actors and the
        expectation over agent i's own next action is taken exactly.
        With alive masks, agent i's TD error counts only on rows where it acted,
        dead agents are left out of the attention, and an agent dead at o'
        (it terminated) is not bootstrapped.
        """
        config = self.config
        with torch.no_grad():
            next_target_probs = [
                F.softmax(target(actor.normalized_observations(obs)).float(), dim=-1)
                for target, actor, obs in zip(central.target_actors, actors, next_observations)
            ]
            next_log_probs = [
                F.log_softmax(actor.action_logits(obs).float(), dim=-1)
                for actor, obs in zip(actors, next_observations)
            ] if config.critic_target_entropy == "paper" else None
            next_actions = torch.stack(
                [
                    torch.multinomial(p, 1, generator=self._sampling_generator).squeeze(-1)
                    for p in next_target_probs
                ],
                dim=-1,
            )
            next_actions = no_op_for_dead(next_actions, next_alive)
            next_q, _ = central.target_critic(next_observations, next_actions, next_alive)
            bootstrap = not_terminated.unsqueeze(-1)
            if next_alive is not None:
                bootstrap = bootstrap * next_alive
            targets = critic_targets(
                rewards, bootstrap, next_target_probs, next_q, next_log_probs,
                alpha=alpha, gamma=config.gamma, entropy_term=config.critic_target_entropy,
                next_alive=next_alive,
            )
        q_values, attention_logits = central.critic(observations, actions, alive)
        taken = torch.stack(
            [q.gather(-1, actions[:, k : k + 1]).squeeze(-1) for k, q in enumerate(q_values)],
            dim=-1,
        )
        td_loss = masked_mean((taken - targets).pow(2), alive).sum()
        attention_penalty = config.critic_regularization_coefficient * (
            attention_logit_penalty(attention_logits, central.critic.head_dim)
        )
        loss = td_loss + attention_penalty
        metrics = {
            "critic_loss": loss.detach(),
            "critic_td_loss": td_loss.detach(),
            "q_mean": taken.mean().detach(),
            "q_target_mean": targets.mean(),
        }
        return loss, metrics

    def compute_gradients(
        self, loss_per_module: Dict[ModuleID, TensorType], **kwargs
    ) -> ParamDict:
        for optimizer in self._optimizer_parameters:
            optimizer.zero_grad(set_to_none=True)
        total_loss = sum(self._losses_by_optimizer.values())
        total_loss.backward()
        self._scale_shared_critic_gradients()
        self._average_gradients_across_learners(list(self._params.values()))
        norms = {
            (module_id, name): self._clip_optimizer_gradients(module_id, name)
            for module_id, names in self._module_optimizers.items()
            for name in names
        }
        require_finite_update(total_loss, norms)
        self._losses_by_optimizer = {}
        return {pid: p.grad for pid, p in self._params.items() if p.grad is not None}

    def _scale_shared_critic_gradients(self) -> None:
        """MAAC's 1/n on the gradients of modules every agent's critic loss uses."""
        for param in self._central().critic.shared_parameters():
            if param.grad is not None:
                param.grad.mul_(1.0 / len(self.agent_ids))

    def _optimizer_params(self, module_id, name):
        optimizer = self.get_optimizer(module_id, name)
        return [self._params[pid] for pid in self._optimizer_parameters[optimizer]]

    def _step_one_optimizer(self, module_id, name, loss) -> None:
        """A separate gradient step of one optimiser (the critic's in the
        critic-first order, the extra TRD-Net steps of Eq. 8)."""
        optimizer = self.get_optimizer(module_id, name)
        params = self._optimizer_params(module_id, name)
        optimizer.zero_grad(set_to_none=True)
        with full_precision(self._device):
            loss.backward()
        if name == CRITIC_OPTIMIZER:
            self._scale_shared_critic_gradients()
        self._average_gradients_across_learners(params)
        norm = self._clip_optimizer_gradients(module_id, name)
        require_finite_update(loss, {(module_id, name): norm})
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def _average_gradients_across_learners(self, params) -> None:
        """All-reduce (mean) the gradients of ``params`` across parallel learners."""
        average_across_processes_([p.grad for p in params if p.grad is not None])

    def _clip_optimizer_gradients(self, module_id, name) -> Optional[torch.Tensor]:
        """Gradient-norm clipping per group (Table 3: critic and TRD-Net 10·n,
        policy and opponent models 0.5); returns the group's gradient norm
        before clipping (None if it has no gradient)."""
        n = len(self.agent_ids)
        limit = {
            CRITIC_OPTIMIZER: self.config.critic_grad_clip or 10.0 * n,
            TRD_OPTIMIZER: self.config.trd_grad_clip or 10.0 * n,
            POLICY_OPTIMIZER: self.config.actor_grad_clip,
            OPPONENT_OPTIMIZER: self.config.opponent_model_grad_clip,
        }.get(name)
        params = self._optimizer_params(module_id, name)
        if limit:
            return torch.nn.utils.clip_grad_norm_(params, limit)
        gradients = [p.grad for p in params if p.grad is not None]
        return torch.nn.utils.get_total_norm(gradients) if gradients else None

    def apply_gradients(self, gradients_dict: ParamDict) -> None:
        """Steps every optimiser, then the targets (:meth:`_after_optimizer_step`).

        The gradients were checked for finiteness in :meth:`compute_gradients`,
        so RLlib's per-parameter checks are skipped unless RLlib's grad scalers
        or LR-scheduler classes are configured (then its own step runs).
        """
        if self._grad_scalers is not None or self._lr_scheduler_classes is not None:
            super().apply_gradients(gradients_dict)
        else:
            for pid, grad in gradients_dict.items():
                self._params[pid].grad = grad
            for module_id, names in self._module_optimizers.items():
                for name in names:
                    self.get_optimizer(module_id, name).step()
        self._after_optimizer_step()

    @torch.no_grad()
    def _after_optimizer_step(self) -> None:
        """Soft-update targets (tau); refresh the old actors every m updates."""
        central = self._central()
        tau = self.config.tau
        soft_update_(
            central.target_critic.parameters(), central.critic.parameters(), tau
        )
        average_running_statistics_across_processes_(
            [self.module[module_id] for module_id in self.module.keys()]
        )
        central.target_critic.copy_normalization_statistics_(central.critic)
        for k, agent in enumerate(self.agent_ids):
            actor = self._actor(agent).policy_network
            soft_update_(central.target_actors[k].parameters(), actor.parameters(), tau)
        if central.trd_net is not None:
            self._project_trust_regions(central)
        central.num_updates += 1
        if int(central.num_updates) % self.config.mirror_descent_lag == 0:
            for k, agent in enumerate(self.agent_ids):
                central.old_actors[k].load_state_dict(
                    self._actor(agent).policy_network.state_dict()
                )

    def get_state(self, *args, **kwargs):
        state = super().get_state(*args, **kwargs)
        state["mamt_sampling_generator"] = self._sampling_generator.get_state()
        return state

    def set_state(self, state) -> None:
        super().set_state(state)
        if "mamt_sampling_generator" in state:
            self._sampling_generator.set_state(state["mamt_sampling_generator"])

"""Fingerprints of one learner update on a fixed synthetic batch (for
tests/test_learner_numerics.py and the script that writes its reference).

A small Rover-Tower learner (8 agents, two action-space sizes) is built with a
fixed seed and given one synthetic joint batch drawn from a seeded torch
generator, so neither the env nor the replay buffer takes part. The update's
losses, every gradient an optimiser steps on (after scaling and clipping, in
step order) and the parameters after the update are recorded. Tensors are
reduced to their norm and their dot product with a fixed random direction,
which moves with practically any change of the tensor.

The old actors of the mirror-descent term are offset from the actors by seeded
noise before the update, as they are between refreshes (``mirror_descent_lag``):
with the old policy equal to the policy, the divergence's gradient, and so the
δ step's slopes, are rounding noise (~1e-10), which the δ optimiser's
normalised first step turns into a full step whose sign depended on the CPU.
"""

from typing import Dict, List

import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from rllib_mamt import MAMTConfig
from rllib_mamt.joint_replay_buffer import (
    ACTIONS,
    ALIVE,
    NEXT_ALIVE,
    REWARDS,
    TERMINATEDS,
    next_obs_key,
    obs_key,
)
from rllib_mamt.central_module_spec import CENTRAL_MODULE_ID

BATCH_ROWS = 96
CASES = {
    "maac": dict(trust_region_mode="none"),
    "mamd": dict(trust_region_mode="equal"),
    "mamt": dict(trust_region_mode="learned"),
    "mamt_alive": dict(trust_region_mode="learned"),
    "mamt_simultaneous": dict(trust_region_mode="learned", update_order="simultaneous"),
}
LOSS_METRICS = {
    CENTRAL_MODULE_ID: ["critic_loss", "critic_td_loss", "q_mean", "q_target_mean",
                        "trd_loss", "delta_loss", "opponent_model_loss",
                        "non_stationarity_total"],
    "agent": ["actor_loss", "policy_gradient_loss", "entropy", "kl_to_old_policy",
              "advantage_abs_mean", "predicted_kl", "delta_value_slope",
              "delta_drift_slope"],
}


def numerics_config(case: str) -> MAMTConfig:
    """The small Rover-Tower config of one case; σ of Eq. 5 is 0, as a fresh
    critic's influences (~1e-3) are all below the default 0.2, which would make
    C, D_ns and the δ step's drift slopes 0."""
    return (
        MAMTConfig()
        .environment("rover_tower")
        .env_runners(num_env_runners=0)
        .training(
            train_batch_size_per_learner=BATCH_ROWS,
            coordination_batch_size=48,
            actor_hidden_sizes=[32, 32],
            critic_hidden_dim=32,
            trd_hidden_dim=16,
            coordination_threshold=0.0,
            num_steps_sampled_before_learning_starts=10**9,
            **CASES[case],
        )
        .debugging(seed=3)
    )


OLD_ACTOR_OFFSET = 0.05
"""Std of the seeded noise added to the old actors' parameters (:func:`lag_old_actors`)."""


@torch.no_grad()
def lag_old_actors(learner) -> None:
    """Moves each old actor away from its actor by seeded noise of std
    ``OLD_ACTOR_OFFSET``, the state of an update between two refreshes."""
    central = learner.module[CENTRAL_MODULE_ID].unwrapped()
    generator = torch.Generator().manual_seed(5)
    for old in central.old_actors:
        for parameter in old.parameters():
            parameter.add_(OLD_ACTOR_OFFSET * torch.randn(parameter.shape, generator=generator))


def synthetic_batch(learner, with_alive: bool, rounding: float = 0.0) -> Dict[str, torch.Tensor]:
    """A joint batch of ``BATCH_ROWS`` rows drawn from a fixed-seed generator;
    ``rounding`` scales its observations and rewards by ``1 + rounding`` (a
    rounding-sized change, to check the fingerprints do not hang on one)."""
    central = learner.module[CENTRAL_MODULE_ID].unwrapped()
    generator = torch.Generator().manual_seed(11)
    n = len(central.agent_ids)
    data = {}
    for k, agent in enumerate(central.agent_ids):
        size = learner.module[agent].unwrapped().policy_network[0].in_features
        data[obs_key(k)] = torch.randn(BATCH_ROWS, size, generator=generator)
        data[next_obs_key(k)] = torch.randn(BATCH_ROWS, size, generator=generator)
    data[ACTIONS] = torch.stack(
        [torch.randint(0, size, (BATCH_ROWS,), generator=generator)
         for size in central.action_sizes], -1,
    )
    data[REWARDS] = torch.randn(BATCH_ROWS, n, generator=generator)
    data[TERMINATEDS] = (torch.rand(BATCH_ROWS, generator=generator) < 0.1).float()
    alive = torch.ones(BATCH_ROWS, n)
    next_alive = torch.ones(BATCH_ROWS, n)
    if with_alive:
        next_alive[: BATCH_ROWS // 3, 1] = 0.0
        alive[: BATCH_ROWS // 4, 1] = 0.0
        next_alive[BATCH_ROWS // 2 :, 5] = 0.0
        alive[2 * BATCH_ROWS // 3 :, 5] = 0.0
        data[ACTIONS] = data[ACTIONS].masked_fill(alive < 0.5, 0)
    data[ALIVE], data[NEXT_ALIVE] = alive, next_alive
    for key, value in data.items():
        if key not in (ACTIONS, TERMINATEDS, ALIVE, NEXT_ALIVE):
            data[key] = value * (1.0 + rounding)
    return data


def _direction(numel: int) -> torch.Tensor:
    return torch.randn(numel, generator=torch.Generator().manual_seed(numel), dtype=torch.float64)


def fingerprint(tensor: torch.Tensor) -> List[float]:
    """[norm, dot with a fixed random direction] of a tensor, in float64."""
    flat = tensor.detach().reshape(-1).double()
    return [float(flat.norm()), float(flat @ _direction(flat.numel()))]


def record_update(case: str, rounding: float = 0.0) -> Dict[str, Dict[str, List[float]]]:
    """Losses, stepped gradients and updated parameters of one update of
    ``case``, its old actors lagging (:func:`lag_old_actors`), on the batch
    of :func:`synthetic_batch` (``rounding`` passed on)."""
    algo = numerics_config(case).build_algo()
    try:
        learner = algo.learner_group._learner
        names = {
            id(param): f"{module_id}/{name}"
            for module_id in learner.module.keys()
            for name, param in learner.module[module_id].named_parameters()
        }
        gradients = {}

        def record_gradients(optimizer, args, kwargs):
            step = len({key.split("|")[0] for key in gradients})
            for group in optimizer.param_groups:
                for param in group["params"]:
                    if param.grad is not None:
                        gradients[f"{step:02d}|{names[id(param)]}"] = fingerprint(param.grad)

        hook = register_optimizer_step_pre_hook(record_gradients)
        try:
            lag_old_actors(learner)
            batch = synthetic_batch(learner, with_alive=case.endswith("alive"), rounding=rounding)
            _, losses, _ = learner._uncompiled_update({CENTRAL_MODULE_ID: batch})
        finally:
            hook.remove()
        recorded = {f"loss/{key}": [float(value.detach())] for key, value in losses.items()}
        metrics = learner.metrics.reduce()
        for module_id, values in metrics.items():
            if not isinstance(values, dict):
                continue
            wanted = LOSS_METRICS[CENTRAL_MODULE_ID if module_id == CENTRAL_MODULE_ID else "agent"]
            for key in wanted:
                if key in values:
                    recorded[f"metric/{module_id}/{key}"] = [float(values[key])]
            for key in ("coordination", "counterfactual_influence"):  # Eq. 5, per pair
                for other, value in values.get(key, {}).items():
                    recorded[f"metric/{module_id}/{key}/{other}"] = [float(value)]
        recorded.update({f"gradient/{key}": value for key, value in gradients.items()})
        for module_id in learner.module.keys():
            for name, tensor in learner.module[module_id].state_dict().items():
                if tensor.is_floating_point():
                    recorded[f"state/{module_id}/{name}"] = fingerprint(tensor)
        return recorded
    finally:
        algo.stop()

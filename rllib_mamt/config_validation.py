"""Checks of ``MAMTConfig`` values: each error names the key, the value and the range.

Also probes the configured environment once at build time to learn its agents
and to reject environments in which not every agent acts at every step.
"""

import math
from numbers import Integral, Real
from typing import Dict, Tuple

import gymnasium as gym
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from rllib_mamt.algorithms.mamt.coordination import COORDINATION_NORMALIZATIONS
from rllib_mamt.algorithms.mamt.decomposition_defaults import joint_trust_region_budget
from rllib_mamt.algorithms.mamt.delta_allocation import BUDGET_CONSTRAINTS, TRUST_REGION_STEPS
from rllib_mamt.algorithms.mamt.mamt_config import TRUST_REGION_MODES
from rllib_mamt.algorithms.mamt.trust_region_learning import (
    LEARNED_TRUST_REGION_MODES,
    TRUST_REGION_UPDATES,
)
from rllib_mamt.learner_precision import LEARNER_PRECISIONS
from rllib_mamt.modules.actor import require_discrete
from rllib_mamt.observation_flattening import require_flattenable


def _fail(key: str, value, allowed: str, owner: str = "MAMTConfig") -> None:
    raise ValueError(f"{owner}: '{key}' = {value!r} is invalid; allowed: {allowed}.")


def _hidden_sizes(config, key: str) -> None:
    """Rejects a ``key`` that is not a list of integers >= 1 (an empty list is
    a linear network); the error names the config class."""
    sizes = getattr(config, key)
    if not isinstance(sizes, (list, tuple)) or not all(
        isinstance(s, Integral) and not isinstance(s, bool) and s >= 1 for s in sizes
    ):
        _fail(key, sizes, "a list of integers >= 1 (may be empty)", type(config).__name__)


def _number(config, key, *, low=None, high=None, low_open=False, high_open=False,
            integer=False, optional=False) -> None:
    """Rejects ``config.<key>`` unless it is a finite number in the given range
    (the error names the config's class, the key, the value and the range)."""
    value = getattr(config, key)
    if value is None and optional:
        return
    kind = Integral if integer else Real
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high}")
    allowed = ("an integer" if integer else "a number") + (
        " " + " and ".join(bounds) if bounds else ""
    ) + (" or None" if optional else "")
    if isinstance(value, bool) or not isinstance(value, kind):
        _fail(key, value, allowed, type(config).__name__)
    if not math.isfinite(value):
        _fail(key, value, allowed, type(config).__name__)
    if low is not None and (value < low or (low_open and value == low)):
        _fail(key, value, allowed, type(config).__name__)
    if high is not None and (value > high or (high_open and value == high)):
        _fail(key, value, allowed, type(config).__name__)


CRITIC_TARGET_ENTROPIES = ("maac", "paper")
UPDATE_ORDERS = ("critic_first", "simultaneous")


def _one_of(config, key, allowed) -> None:
    """Rejects ``config.<key>`` unless it is one of ``allowed``."""
    value = getattr(config, key)
    if value not in allowed:
        _fail(key, value, " | ".join(repr(option) for option in allowed),
              type(config).__name__)


def validate_mamt_settings(config) -> None:
    """Raises ``ValueError`` for the first MAMT setting out of its allowed range."""
    for key in ("actor_lr", "critic_lr", "adam_epsilon", "reward_scale"):
        _number(config, key, low=0, low_open=True)
    _number(config, "tau", low=0, high=1, low_open=True)
    _number(config, "gamma", low=0, high=1)
    for key in ("actor_logit_regularization", "critic_regularization_coefficient"):
        _number(config, key, low=0)
    _number(config, "actor_grad_clip", low=0, low_open=True, optional=True)
    _number(config, "critic_grad_clip", low=0, low_open=True, optional=True)
    for key in ("critic_hidden_dim", "critic_attention_heads", "replay_buffer_capacity",
                "env_steps_per_update", "num_updates_per_round", "mirror_descent_lag"):
        _number(config, key, low=1, integer=True)
    _number(config, "num_steps_sampled_before_learning_starts", low=1, integer=True,
            optional=True)
    if config.critic_hidden_dim % config.critic_attention_heads:
        _fail("critic_attention_heads", config.critic_attention_heads,
              f"a divisor of critic_hidden_dim={config.critic_hidden_dim}")
    _hidden_sizes(config, "actor_hidden_sizes")
    if not isinstance(config.standardize_rewards, bool):
        _fail("standardize_rewards", config.standardize_rewards, "True or False")
    if not (isinstance(config.input_normalization, bool) or config.input_normalization == "auto"):
        _fail("input_normalization", config.input_normalization, "True, False or 'auto'")
    _number(config, "tsallis_q", low=0)
    _number(config, "trust_region_budget_penalty", low=0)
    _number(config, "learner_torch_threads", low=1, integer=True, optional=True)
    _number(config, "critic_weight_decay", low=0)
    _one_of(config, "critic_target_entropy", CRITIC_TARGET_ENTROPIES)
    _one_of(config, "update_order", UPDATE_ORDERS)
    _one_of(config, "learner_precision", LEARNER_PRECISIONS)
    _one_of(config, "trust_region_update", TRUST_REGION_UPDATES)
    if not isinstance(config.mirror_descent_entropy, bool):
        _fail("mirror_descent_entropy", config.mirror_descent_entropy, "True or False")
    validate_trust_region_decomposition(config)
    _validate_trust_region(config)
    _validate_joint_sampler(config)
    if config.train_batch_size_per_learner < 1:
        _fail("train_batch_size_per_learner", config.train_batch_size_per_learner,
              "an integer >= 1")
    if config.input_normalization is True and config.train_batch_size_per_learner < 2:
        _fail("train_batch_size_per_learner", config.train_batch_size_per_learner,
              "an integer >= 2 with input_normalization=True (batch statistics)")


EPISODE_CALLBACKS = (
    "on_episode_created", "on_episode_start", "on_episode_step", "on_episode_end",
)


def _validate_joint_sampler(config) -> None:
    """Rejects settings MAMT's ``JointEnvRunner`` would silently not honour.

    The joint sampler does not build ``MultiAgentEpisode`` objects or run
    connector pipelines, so episode callbacks and custom connectors need RLlib's
    ``MultiAgentEnvRunner``.
    """
    from ray.rllib.callbacks.callbacks import RLlibCallback
    from ray.rllib.utils import force_list

    from rllib_mamt.joint_env_runner import JointEnvRunner

    runner = config.env_runner_cls
    if not (isinstance(runner, type) and issubclass(runner, JointEnvRunner)):
        return
    owner = type(config).__name__
    use_rllib = ("or sample with RLlib's own EnvRunner: config.env_runners("
                 "env_runner_cls=ray.rllib.env.multi_agent_env_runner.MultiAgentEnvRunner)")
    for key in ("env_to_module_connector", "module_to_env_connector"):
        value = getattr(config, f"_{key}")
        if value is not None:
            _fail(key, value, f"None with MAMT's JointEnvRunner, which runs no connector "
                              f"pipeline, {use_rllib}", owner=owner)
    for name in EPISODE_CALLBACKS:
        value = getattr(config, f"callbacks_{name}")
        if value is not None:
            _fail(f"callbacks_{name}", value,
                  f"None with MAMT's JointEnvRunner, which builds no episode objects, "
                  f"{use_rllib}", owner=owner)
    for callback_class in force_list(config.callbacks_class):
        overridden = [
            name for name in EPISODE_CALLBACKS
            if isinstance(callback_class, type)
            and getattr(callback_class, name, None) is not getattr(RLlibCallback, name)
        ]
        if overridden:
            _fail("callbacks_class", callback_class,
                  f"a class without {overridden} with MAMT's JointEnvRunner, which "
                  f"builds no episode objects, {use_rllib}", owner=owner)


def validate_trust_region_decomposition(config) -> None:
    """Rejects the first bad setting of the trust-region decomposition (C of
    Eq. 5, D_ns of Eq. 6, TRD-Net of Eq. 7, learned delta of Eq. 8), the keys
    MAMT and MAMT-PPO share; errors name the config's class."""
    _number(config, "coordination_threshold", low=0, high=1, high_open=True)
    _number(config, "coordination_batch_size", low=1, integer=True, optional=True)
    for key in ("opponent_model_lr", "trd_lr", "delta_lr"):
        _number(config, key, low=0, low_open=True)
    _number(config, "opponent_model_logit_regularization", low=0)
    _number(config, "opponent_model_grad_clip", low=0, low_open=True, optional=True)
    _number(config, "trd_grad_clip", low=0, low_open=True, optional=True)
    _number(config, "trd_hidden_dim", low=1, integer=True)
    _number(config, "trd_message_passing_layers", low=0, integer=True)
    _number(config, "trd_updates_per_delta_update", low=1, integer=True)
    _one_of(config, "trust_region_budget_constraint", BUDGET_CONSTRAINTS)
    _one_of(config, "trust_region_step", TRUST_REGION_STEPS)
    if (getattr(config, "trust_region_update", None) == "literal"
            and config.trust_region_step != TRUST_REGION_STEPS[0]):
        _fail("trust_region_step", config.trust_region_step,
              f"{TRUST_REGION_STEPS[0]!r} (the default) when trust_region_update='literal', "
              "whose per-coordinate Adam step of log delta does not read this key",
              type(config).__name__)
    _one_of(config, "coordination_normalization", COORDINATION_NORMALIZATIONS)
    projection = config.non_stationarity_range
    if (
        not isinstance(projection, (list, tuple))
        or len(projection) != 2
        or not all(isinstance(b, Real) and not isinstance(b, bool) for b in projection)
        or not 0 <= projection[0] < projection[1] < math.inf
    ):
        _fail("non_stationarity_range", projection,
              "(low, high) with 0 <= low < high < inf", type(config).__name__)
    bounds = config.trust_region_bounds
    if (
        not isinstance(bounds, (list, tuple))
        or len(bounds) != 2
        or not all(isinstance(b, Real) and not isinstance(b, bool) for b in bounds)
        or not 0 < bounds[0] <= bounds[1] < math.inf
    ):
        _fail("trust_region_bounds", bounds,
              "(delta_min, delta_max) with 0 < delta_min <= delta_max < inf",
              type(config).__name__)
    _number(config, "trust_region_budget", low=0, low_open=True, optional=True)


def _validate_trust_region(config) -> None:
    if config.trust_region_mode not in TRUST_REGION_MODES:
        _fail("trust_region_mode", config.trust_region_mode,
              " | ".join(repr(m) for m in TRUST_REGION_MODES))
    bounds = config.trust_region_bounds
    deltas = config.trust_region_deltas
    if config.trust_region_mode == "manual":
        if not isinstance(deltas, dict) or not deltas:
            _fail("trust_region_deltas", deltas,
                  "a non-empty {agent_id: delta_i} dict when trust_region_mode='manual'")
        for agent, delta in deltas.items():
            if isinstance(delta, bool) or not isinstance(delta, Real) or not (
                bounds[0] <= delta <= bounds[1]
            ):
                _fail(f"trust_region_deltas[{agent!r}]", delta,
                      f"a number within trust_region_bounds {tuple(bounds)}")
    elif deltas is not None:
        _fail("trust_region_deltas", deltas,
              "None unless trust_region_mode='manual'")


def pinned_trust_region(bounds, budget: float, n_agents: int, constraint: str):
    """The delta every agent is held at when the bounds, the joint budget and
    its constraint leave learned delta_i (Eq. 8) no freedom; None if they move.

    ``"equality"`` keeps sum_i delta_i = budget with each delta_i in
    [delta_min, delta_max]: a budget of n * delta_max or more puts every
    delta_i at delta_max (the TRD-Net and the delta update then change nothing,
    and MAMT runs as MAMD with delta_i = delta_max), one of n * delta_min or less
    at delta_min. ``"upper_bound"`` only caps the sum, so only a budget of
    n * delta_min or less pins delta. Equal bounds pin delta either way.
    """
    low, high = bounds
    if low == high or budget <= n_agents * low:
        return float(low)
    if constraint == "equality" and budget >= n_agents * high:
        return float(high)
    return None


def pinned_learned_delta(config, n_agents: int):
    """:func:`pinned_trust_region` for a config's bounds, budget (None:
    n_agents) and constraint with ``n_agents`` agents."""
    budget = joint_trust_region_budget(config.trust_region_budget, n_agents)
    return pinned_trust_region(tuple(config.trust_region_bounds), budget, n_agents,
                               config.trust_region_budget_constraint)


def validate_learnable_deltas(config) -> None:
    """For the learned trust-region modes (MAMT, its ablations, MAMT-PPO):
    rejects a budget that cannot hold every delta_min, and bounds, budget and
    constraint that pin every delta_i (:func:`pinned_trust_region`). Needs the
    agents (after they are read from the env)."""
    if config.trust_region_mode not in LEARNED_TRUST_REGION_MODES:
        return
    n = len(config.agent_ids())
    owner = type(config).__name__
    low = config.trust_region_bounds[0]
    given = config.trust_region_budget
    if given is not None and given < n * low:
        _fail("trust_region_budget", given,
              f">= n_agents * delta_min = {n * low} so every delta_i fits its bounds", owner)
    pinned = pinned_learned_delta(config, n)
    if pinned is not None:
        budget_text = f"{n:g} (n_agents)" if given is None else f"{given:g}"
        _fail("trust_region_bounds", tuple(config.trust_region_bounds),
              f"bounds that leave learned delta_i room to move: with {n} agents, "
              f"trust_region_budget={budget_text} and trust_region_budget_constraint="
              f"{config.trust_region_budget_constraint!r} every delta_i is held at {pinned:g} "
              f"(that is MAMD: trust_region_mode='equal', trust_region_budget={n * pinned:g}); "
              f"learned delta needs n_agents * delta_min < budget"
              + (" < n_agents * delta_max" if config.trust_region_budget_constraint == "equality"
                 else "") + " and delta_min < delta_max", owner)


def agent_spaces(env, agent) -> Tuple[gym.Space, gym.Space]:
    """One agent's (observation, action) spaces, read the way RLlib reads them.

    ``MultiAgentEnv.get_observation_space`` / ``get_action_space`` use the
    per-agent ``observation_spaces`` dicts when the env sets them and fall back
    to a ``Dict`` ``observation_space`` keyed by agent (RLlib's own
    ``ParallelPettingZooEnv`` sets only the latter).
    """
    return env.get_observation_space(agent), env.get_action_space(agent)


def _require_flattening_on_rllib_runner(config, spaces) -> None:
    """Non-Box observations need RLlib's ``FlattenObservations`` connector on
    RLlib's own EnvRunner (MAMT's JointEnvRunner flattens them itself).

    With that connector, RLlib's episodes hold the flattened observations, so
    the actors and the joint replay buffer see the same flat vectors.
    """
    from rllib_mamt.joint_env_runner import JointEnvRunner

    runner = config.env_runner_cls
    if runner is None or (isinstance(runner, type) and issubclass(runner, JointEnvRunner)):
        return
    structured = sorted(
        agent for agent, (observation_space, _) in spaces.items()
        if not isinstance(observation_space, gym.spaces.Box)
    )
    if structured and config._env_to_module_connector is None:
        _fail("env_to_module_connector", None,
              f"a connector that flattens the non-Box observations of agents "
              f"{structured} on RLlib's EnvRunner, e.g. lambda env, spaces, device: "
              "ray.rllib.connectors.env_to_module.FlattenObservations("
              "multi_agent=True); or sample with MAMT's JointEnvRunner, which "
              "flattens them itself")


def require_one_action_kind(algorithm: str, action_spaces: Dict[str, gym.Space]) -> None:
    """Rejects agents that mix Box and non-Box actions (the joint ACTIONS
    column holds either indices or float vectors), naming both groups."""
    boxes = sorted(a for a, space in action_spaces.items()
                   if isinstance(space, gym.spaces.Box))
    if boxes and len(boxes) < len(action_spaces):
        raise ValueError(
            f"{algorithm}: agents {boxes} have Box actions and "
            f"{sorted(set(action_spaces) - set(boxes))} do not; allowed: all agents "
            "Box or all Discrete (one joint action column)."
        )


def probe_joint_agents(
    config, algorithm: str = "MAMT", require_action_space=require_discrete
) -> Dict[str, Tuple[gym.Space, gym.Space]]:
    """Reads sorted agents and spaces from one env instance and checks that it
    suits the joint replay buffer and a centralized critic.

    Args:
        config: An algorithm config with ``make_probe_env()``.
        algorithm: The algorithm's name, for the error messages.
        require_action_space: ``f(agent_id, action_space)`` that raises a clear
            ``ValueError`` for an action space the algorithm cannot handle.

    Raises:
        ValueError: If the env is not multi-agent, an observation space cannot
            be flattened, an action space is rejected, or some agent is missing
            after reset or after a random step.
    """
    env = config.make_probe_env()
    try:
        agents = sorted(getattr(env, "possible_agents", None) or [])
        if len(agents) < 2 or not isinstance(env, MultiAgentEnv):
            raise ValueError(
                f"Environment {config.env!r} has agents {agents}; {algorithm} needs a "
                "multi-agent env (RLlib MultiAgentEnv) with at least 2 agents."
            )
        spaces = {agent: agent_spaces(env, agent) for agent in agents}
        for agent, (observation_space, action_space) in spaces.items():
            require_flattenable(agent, observation_space)
            require_action_space(agent, action_space)
        _require_flattening_on_rllib_runner(config, spaces)
        observations, _ = env.reset(seed=0)
        missing = sorted(set(agents) - set(observations))
        if not missing:
            actions = {agent: spaces[agent][1].sample() for agent in agents}
            observations, _, terminateds, truncateds, _ = env.step(actions)
            if not (terminateds.get("__all__") or truncateds.get("__all__")):
                missing = sorted(set(agents) - set(observations))
        if missing:
            raise ValueError(
                f"Environment {config.env!r}: agents {missing} did not act at "
                f"every step. {algorithm}'s joint replay buffer and centralized "
                "critic need every agent to act at every environment step."
            )
    finally:
        env.close()
    return spaces


def probe_agents(config) -> Dict[str, Tuple[gym.Space, gym.Space]]:
    """:func:`probe_joint_agents` for MAMT, plus its trust-region checks.

    Raises:
        ValueError: As :func:`probe_joint_agents` (action spaces must be
            Discrete), or if 'manual' trust regions name an unknown agent.
    """
    spaces = probe_joint_agents(config)
    agents = sorted(spaces)
    if config.trust_region_mode == "manual":
        unknown = sorted(set(config.trust_region_deltas) - set(agents))
        if unknown:
            raise ValueError(
                f"MAMTConfig: 'trust_region_deltas' names unknown agent(s) "
                f"{unknown}; the env's agents are {agents}."
            )
    return spaces

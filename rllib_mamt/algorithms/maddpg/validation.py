"""Checks of ``MADDPGConfig`` values: each error names the key, the value and
what is allowed (shared helpers of :mod:`rllib_mamt.config_validation`)."""

import gymnasium as gym

from rllib_mamt.config_validation import (
    _fail,
    _hidden_sizes,
    _number,
    _validate_joint_sampler,
    require_one_action_kind,
)
from rllib_mamt.modules.deterministic_actor import require_bounded_box


def _fail_maddpg(key: str, value, allowed: str) -> None:
    _fail(key, value, allowed, "MADDPGConfig")


def require_maddpg_action_space(agent_id, space: gym.Space) -> int:
    """The number of actions of a Discrete action space, or the flat size of
    a float Box with finite bounds; rejects any other."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    try:
        return require_bounded_box(agent_id, space)
    except ValueError:
        raise ValueError(
            f"MADDPG: agent '{agent_id}' has action space {space}; allowed: "
            "gymnasium.spaces.Discrete, or a float gymnasium.spaces.Box with finite "
            "low and high (the tanh actor is scaled to the bounds)."
        ) from None


def require_maddpg_action_kinds(config, action_spaces) -> None:
    """Rejects agents that mix Box and Discrete actions, and Box actions on an
    EnvRunner other than the JointEnvRunner (which adds the exploration noise)."""
    from rllib_mamt.joint_env_runner import JointEnvRunner

    require_one_action_kind("MADDPG", action_spaces)
    boxes = any(isinstance(space, gym.spaces.Box) for space in action_spaces.values())
    runner = config.env_runner_cls
    if boxes and not (isinstance(runner, type) and issubclass(runner, JointEnvRunner)):
        _fail_maddpg("env_runner_cls", runner,
                     "JointEnvRunner (the default) with Box actions: it adds MADDPG's "
                     "Gaussian exploration noise and scales actions to the Box")


def validate_maddpg_settings(config) -> None:
    """Raises ``ValueError`` for the first MADDPG setting out of its allowed range."""
    for key in ("actor_lr", "critic_lr", "adam_epsilon", "gumbel_temperature"):
        _number(config, key, low=0, low_open=True)
    _number(config, "exploration_noise_std", low=0)
    _number(config, "tau", low=0, high=1, low_open=True)
    _number(config, "gamma", low=0, high=1)
    _number(config, "actor_logit_regularization", low=0)
    _number(config, "actor_grad_clip", low=0, low_open=True, optional=True)
    _number(config, "critic_grad_clip", low=0, low_open=True, optional=True)
    for key in ("replay_buffer_capacity", "env_steps_per_update", "num_updates_per_round",
                "train_batch_size_per_learner"):
        _number(config, key, low=1, integer=True)
    _number(config, "num_steps_sampled_before_learning_starts", low=1, integer=True,
            optional=True)
    _number(config, "learner_torch_threads", low=1, integer=True, optional=True)
    for key in ("actor_hidden_sizes", "critic_hidden_sizes"):
        _hidden_sizes(config, key)
    if not isinstance(config.standardize_rewards, bool):
        _fail_maddpg("standardize_rewards", config.standardize_rewards, "True or False")
    normalization = config.input_normalization
    if not (isinstance(normalization, bool) or normalization == "auto"):
        _fail_maddpg("input_normalization", normalization, "True, False or 'auto'")
    if normalization is True and config.train_batch_size_per_learner < 2:
        _fail_maddpg("train_batch_size_per_learner", config.train_batch_size_per_learner,
                     "an integer >= 2 with input_normalization=True (batch statistics)")
    if config.num_learners > 1:
        _fail_maddpg("num_learners", config.num_learners,
                     "0 or 1 (MADDPG's learner does not average gradients across "
                     "learners)")
    _validate_joint_sampler(config)

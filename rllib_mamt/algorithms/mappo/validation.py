"""Checks of ``MAPPOConfig`` values: each error names the key, the value and
what is allowed (shared helpers of :mod:`rllib_mamt.config_validation`)."""

import gymnasium as gym

from rllib_mamt.config_validation import _fail, _hidden_sizes, _number, _validate_joint_sampler
from rllib_mamt.modules.deterministic_actor import require_bounded_box


def _fail_mappo(key: str, value, allowed: str) -> None:
    _fail(key, value, allowed, "MAPPOConfig")


def require_mappo_action_space(agent_id, space: gym.Space) -> int:
    """The number of actions of a Discrete action space, or the flat size of a
    float Box with finite bounds (the Gaussian policy's actions are clipped to
    them for the env); rejects any other."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    try:
        return require_bounded_box(agent_id, space)
    except ValueError:
        raise ValueError(
            f"MAPPO: agent '{agent_id}' has action space {space}; allowed: "
            "gymnasium.spaces.Discrete, or a float gymnasium.spaces.Box with finite "
            "low and high (the env gets the Gaussian's actions clipped to them)."
        ) from None


def validate_mappo_settings(config, clip_param_optional: bool = False) -> None:
    """Raises ``ValueError`` for the first MA-PPO setting out of its allowed range
    (``clip_param_optional``: None, no clipping, is allowed too)."""
    from rllib_mamt.joint_env_runner import JointEnvRunner

    for key in ("actor_lr", "critic_lr", "adam_epsilon", "huber_delta"):
        _number(config, key, low=0, low_open=True)
    _number(config, "clip_param", low=0, low_open=True, optional=clip_param_optional)
    for key in ("gamma", "lambda_"):
        _number(config, key, low=0, high=1)
    _number(config, "entropy_coeff", low=0)
    for key in ("actor_grad_clip", "critic_grad_clip"):
        _number(config, key, low=0, low_open=True, optional=True)
    for key in ("train_batch_size_per_learner", "num_epochs", "critic_hidden_dim",
                "critic_attention_heads"):
        _number(config, key, low=1, integer=True)
    _number(config, "minibatch_size", low=1, high=config.train_batch_size_per_learner,
            integer=True, optional=True)
    _number(config, "learner_torch_threads", low=1, integer=True, optional=True)
    if config.critic_hidden_dim % config.critic_attention_heads:
        _fail_mappo("critic_attention_heads", config.critic_attention_heads,
                    f"a divisor of critic_hidden_dim={config.critic_hidden_dim}")
    _hidden_sizes(config, "actor_hidden_sizes")
    for key in ("feature_normalization", "normalize_rewards", "standardize_advantages",
                "shuffle_batch_per_epoch"):
        if not isinstance(getattr(config, key), bool):
            _fail_mappo(key, getattr(config, key), "True or False")
    if config.num_learners > 1:
        _fail_mappo("num_learners", config.num_learners,
                    "0 or 1 (GAE runs on whole sub-env trajectories in one learner)")
    runner = config.env_runner_cls
    if not (isinstance(runner, type) and issubclass(runner, JointEnvRunner)):
        _fail_mappo("env_runner_cls", runner,
                    "rllib_mamt.JointEnvRunner or a subclass (its rows carry the "
                    "sub-env and episode-end columns GAE needs)")
    _validate_joint_sampler(config)

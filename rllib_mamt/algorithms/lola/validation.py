"""Checks of ``LOLAConfig`` values: each error names the key, the value and
what is allowed (shared helpers of :mod:`rllib_mamt.config_validation`)."""

import gymnasium as gym

from rllib_mamt.config_validation import _fail, _hidden_sizes, _number, _validate_joint_sampler

LOLA_NUM_AGENTS = 2


def _fail_lola(key: str, value, allowed: str) -> None:
    _fail(key, value, allowed, "LOLAConfig")


def require_lola_action_space(agent_id, space: gym.Space) -> int:
    """The number of actions of a Discrete action space; rejects any other."""
    if not isinstance(space, gym.spaces.Discrete):
        raise ValueError(
            f"LOLA: agent '{agent_id}' has action space {space}; allowed: "
            "gymnasium.spaces.Discrete (the joint-action Q-network has one output "
            "per pair of discrete actions)."
        )
    return int(space.n)


def require_two_agents(env, agents) -> None:
    """Rejects an environment whose number of agents is not 2, in one line."""
    if len(agents) != LOLA_NUM_AGENTS:
        raise ValueError(
            f"LOLA: environment {env!r} has {len(agents)} agents {sorted(agents)}; "
            f"allowed: exactly {LOLA_NUM_AGENTS} (LOLA's lookahead differentiates "
            "through one opponent's learning step; the paper ran it on 2-agent Spread)."
        )


def validate_lola_settings(config) -> None:
    """Raises ``ValueError`` for the first LOLA setting out of its allowed range."""
    for key in ("policy_lr", "q_lr", "adam_epsilon"):
        _number(config, key, low=0, low_open=True)
    _number(config, "lookahead_lr", low=0)
    _number(config, "tau", low=0, high=1, low_open=True)
    _number(config, "gamma", low=0, high=1)
    _number(config, "grad_clip", low=0, low_open=True, optional=True)
    for key in ("replay_buffer_capacity", "env_steps_per_update", "num_updates_per_round",
                "train_batch_size_per_learner"):
        _number(config, key, low=1, integer=True)
    _number(config, "num_steps_sampled_before_learning_starts", low=1, integer=True,
            optional=True)
    _number(config, "learner_torch_threads", low=1, integer=True, optional=True)
    for key in ("actor_hidden_sizes", "q_hidden_sizes"):
        _hidden_sizes(config, key)
    if not isinstance(config.standardize_rewards, bool):
        _fail_lola("standardize_rewards", config.standardize_rewards, "True or False")
    normalization = config.input_normalization
    if not (isinstance(normalization, bool) or normalization == "auto"):
        _fail_lola("input_normalization", normalization, "True, False or 'auto'")
    if config.num_learners > 1:
        _fail_lola("num_learners", config.num_learners,
                   "0 or 1 (LOLA's learner does not average gradients across learners)")
    _validate_joint_sampler(config)

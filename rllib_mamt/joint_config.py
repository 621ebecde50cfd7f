"""What every algorithm config of the package shares: joint sampling, one actor
per agent read from the env, and the spaces the joint pipeline needs.

:class:`JointAlgorithmConfig` sets RLlib's new API stack, the JointEnvRunner
(all actors in one batched pass per step, joint rows handed over as they are),
deterministic 10-episode evaluation (paper Appendix G, "Performance metric"),
and gives each agent its own actor module. :class:`JointOffPolicyConfig` adds
what the off-policy loop (:mod:`rllib_mamt.joint_off_policy`) reads. Each
algorithm's config subclasses one of them and adds its own ``training()``
keys, checks (``validate_algorithm_settings``), action-space rule
(``probe_agents``) and modules.
"""

import math
from typing import Dict, List, Tuple

import gymnasium as gym

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.env.env_context import EnvContext
from ray.rllib.policy.policy import PolicySpec
from ray.rllib.utils.annotations import override

from rllib_mamt.central_module_spec import map_agent_to_own_module
from rllib_mamt.modules.actor import flat_size


def _policy_spaces(policy) -> Tuple[gym.Space, gym.Space]:
    """(observation space, action space) of a PolicySpec or of the plain tuple
    ``(policy_class, observation_space, action_space, config)`` a restored
    config holds."""
    if isinstance(policy, PolicySpec):
        return policy.observation_space, policy.action_space
    return policy[1], policy[2]


class JointAlgorithmConfig(AlgorithmConfig):
    """Base of every algorithm config here (MAMT, MADDPG, MAPPO, LOLA)."""

    def __init__(self, algo_class=None):
        from rllib_mamt.joint_env_runner import JointEnvRunner

        super().__init__(algo_class=algo_class)
        # These algorithms exist only on RLlib's new API stack (RLModules,
        # Learners, EnvRunners); set explicitly rather than relying on defaults.
        self.api_stack(
            enable_rl_module_and_learner=True,
            enable_env_runner_and_connector_v2=True,
        )
        self.gamma = 0.99
        self.rollout_fragment_length = "auto"
        # RLlib 2.60's MultiAgentEnvRunner re-numpy-izes every finished episode
        # of a sample call at every step (quadratic); the joint pipeline
        # converts each chunk once itself, so EnvRunners hand over plain lists.
        self.episodes_to_numpy = False
        # All actors in one batched pass per step, joint rows straight to the
        # learner side (rllib_mamt/joint_env_runner.py); RLlib's
        # MultiAgentEnvRunner can still be chosen with
        # .env_runners(env_runner_cls=...) where the algorithm supports it.
        self.env_runner_cls = JointEnvRunner
        self.evaluation_config = {"explore": False}
        self.evaluation_duration = 10
        self.evaluation_duration_unit = "episodes"

    def has_box_actions(self) -> bool:
        """Whether the agents' policies have Box action spaces (the algorithms
        that accept them require all agents Box or all Discrete)."""
        return any(
            isinstance(spec.action_space if isinstance(spec, PolicySpec) else spec[2],
                       gym.spaces.Box)
            for spec in (self.policies or {}).values()
        )

    @override(AlgorithmConfig)
    def validate(self) -> None:
        super().validate()
        self.validate_algorithm_settings()
        self._assign_one_actor_per_agent()
        self.validate_agents()

    def validate_algorithm_settings(self) -> None:
        """Raises ``ValueError`` for the first algorithm setting out of range
        (before the env is built)."""

    def validate_agents(self) -> None:
        """Checks that need the agents and their spaces (after they are read)."""

    def probe_agents(self) -> Dict[str, Tuple[gym.Space, gym.Space]]:
        """Sorted agents and their (observation, action) spaces, read from one
        env instance and checked for this algorithm (see
        :func:`rllib_mamt.config_validation.probe_joint_agents`)."""
        raise NotImplementedError

    def _assign_one_actor_per_agent(self) -> None:
        """Gives every agent its own actor module, reading agents from the env
        (and rejecting envs the algorithm cannot run, see ``probe_agents``)."""
        if self.policies and set(self.policies) != {"default_policy"}:
            return
        if self.env is None:
            return
        spaces = self.probe_agents()
        self.multi_agent(
            policies={
                agent: PolicySpec(observation_space=obs, action_space=act)
                for agent, (obs, act) in spaces.items()
            },
            policy_mapping_fn=map_agent_to_own_module,
        )

    def agent_ids(self) -> List[str]:
        """Agent ids (= actor module ids) in the order used by every tensor."""
        return sorted(self.policies)

    def agent_observation_sizes(self) -> Dict[str, int]:
        """Flat observation size per agent, read from the per-agent policies."""
        return {
            agent: flat_size(_policy_spaces(self.policies[agent])[0])
            for agent in self.agent_ids()
        }

    def agent_action_spaces(self) -> Dict[str, gym.Space]:
        """Action space per agent, read from the per-agent policies."""
        return {agent: _policy_spaces(self.policies[agent])[1] for agent in self.agent_ids()}

    def resolved_input_normalization(self) -> bool:
        """``input_normalization`` as a bool: "auto" normalises inputs when some
        agent's observation space declares values beyond ±100 (see
        :mod:`rllib_mamt.input_scale`)."""
        if self.input_normalization != "auto":
            return bool(self.input_normalization)
        from rllib_mamt.input_scale import declares_large_values

        spaces = [_policy_spaces(policy)[0] for policy in self.policies.values()]
        return any(space is not None and declares_large_values(space) for space in spaces)

    def require_batch_for_normalization(self) -> None:
        """Rejects a one-row batch when inputs are batch-normalised (once the
        agents' spaces are known, so that "auto" is resolved)."""
        if self.policies and self.resolved_input_normalization() and (
            self.train_batch_size_per_learner < 2
        ):
            raise ValueError(
                f"{type(self).__name__}: 'train_batch_size_per_learner' = "
                f"{self.train_batch_size_per_learner!r} is invalid; allowed: an integer "
                f">= 2 when inputs are normalised (input_normalization="
                f"{self.input_normalization!r}; batch statistics need 2 rows)."
            )

    def env_steps_per_sample(self) -> int:
        """Env steps one ``sample()`` of all EnvRunners together should yield."""
        raise NotImplementedError

    @override(AlgorithmConfig)
    def get_rollout_fragment_length(self, worker_index: int = 0) -> int:
        """"auto": all EnvRunners' sub-envs together yield (at least)
        ``env_steps_per_sample()`` env steps per ``sample()``."""
        if self.rollout_fragment_length != "auto":
            return self.rollout_fragment_length
        samplers = max(1, self.num_env_runners or 0) * self.num_envs_per_env_runner
        return max(1, math.ceil(self.env_steps_per_sample() / samplers))

    def make_probe_env(self):
        """Builds one instance of the configured env (for spaces and checks)."""
        from ray.rllib.algorithms.algorithm import Algorithm

        _, creator = Algorithm._get_env_id_and_creator(self.env, self)
        return creator(EnvContext(self.env_config, worker_index=0))


class JointOffPolicyConfig(JointAlgorithmConfig):
    """Base of the configs of the off-policy loop (MAMT, MADDPG, LOLA): one
    training step samples ``env_steps_per_update`` env steps into the joint
    replay buffer, then runs learner updates once it holds enough rows."""

    def env_steps_per_sample(self) -> int:
        return self.env_steps_per_update

    def first_update_buffer_size(self) -> int:
        """Buffer size at which updates begin."""
        if self.num_steps_sampled_before_learning_starts is not None:
            return self.num_steps_sampled_before_learning_starts
        return self.total_train_batch_size

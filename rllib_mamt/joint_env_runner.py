"""MAMT's EnvRunner: joint transitions sampled with all actors in one pass.

RLlib's ``MultiAgentEnvRunner`` builds a ``MultiAgentEpisode`` per env and runs
the env-to-module and module-to-env connector pipelines once per step, with one
RLModule forward per agent; on cheap environments that bookkeeping, not the env,
sets the sampling rate (BENCHMARKS.md). MAMT needs neither: Algorithm 2 stores
whole joint transitions ``({o_i}, {a_i}, {r_i}, {o'_i}, d)`` and its actors are
plain per-agent MLPs. This runner keeps everything of ``MultiAgentEnvRunner``
(env creation and vectorisation, module building, weight sync, state and
checkpoints, metrics names) and replaces only the sampling loop:

* all agents' actors are evaluated in one batched pass per vector step
  (:class:`rllib_mamt.stacked_actors.StackedActors`); each actor still sees only
  its own observation, so execution stays decentralized;
* the sub-environments are stepped directly and the step data is written into
  preallocated arrays, returned as :class:`JointTransitions` rows the joint
  replay buffer stores without conversion (discrete actions as indices, Box
  actions as float vectors in the Box's units, with the exploration noise of
  the config's ``exploration_noise_std`` or, for Gaussian actors, the
  unclipped sample); the env receives Box actions clipped to the Box's bounds.

It is MAMTConfig's default ``env_runner_cls``; RLlib's own path stays available
with ``config.env_runners(env_runner_cls=MultiAgentEnvRunner)``.
Episode-level callbacks (``on_episode_*``) and custom connector pipelines are
not run by this sampler; ``MAMTConfig.validate()`` rejects them with a message
that points to the RLlib path. With ``restart_failed_sub_environments=True`` a
sub-env whose ``step()`` or ``reset()`` raises is recreated alone (from the same
env creator), the rows of its unfinished episode in the current sample are
dropped and the failure is counted in ``num_env_step_failures``.

Each episode's ``reset()`` seed is a function of the runner's seed, the sub-env
and the episode's number only (:func:`episode_seed`). The runner's checkpoint
state (``joint_sampling``) holds those episode numbers and its action-sampling
generators, so a run restored on the local EnvRunner (``num_env_runners=0``)
samples the same episodes and actions as the uninterrupted run when the
checkpoint falls between episodes (as with the paper-budget runs, whose
iterations end on episode boundaries); a sub-env caught mid-episode restarts
that episode. Remote EnvRunners, which an ``Algorithm`` checkpoint does not
save, start again from their seeds.
"""

import json
import logging
import time
from typing import List, Optional

import gymnasium as gym
import numpy as np
import torch

from ray.rllib.env.env_runner import NUM_ENV_STEP_FAILURES_LIFETIME
from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import (
    NUM_AGENT_STEPS_SAMPLED,
    NUM_AGENT_STEPS_SAMPLED_LIFETIME,
    NUM_ENV_STEPS_SAMPLED,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_EPISODES,
    NUM_EPISODES_LIFETIME,
    NUM_MODULE_STEPS_SAMPLED,
    NUM_MODULE_STEPS_SAMPLED_LIFETIME,
    RLMODULE_INFERENCE_TIMER,
)

from rllib_mamt.joint_replay_buffer import (
    ACTIONS,
    ALIVE,
    NEXT_ALIVE,
    REWARDS,
    TERMINATEDS,
    AgentsNotSynchronousError,
    action_column_layout,
    next_obs_key,
    obs_key,
)
from rllib_mamt.episode_end import episode_end
from rllib_mamt.joint_transitions import ENV_INDICES, EPISODE_ENDS, JointTransitions
from rllib_mamt.observation_flattening import observation_flattener
from rllib_mamt.stacked_actors import StackedActors

logger = logging.getLogger(__name__)

# The gymnasium id under which MultiAgentEnvRunner.make_env registers the env.
RLLIB_MULTI_AGENT_ENV_ID = "rllib-multi-agent-env-v0"
# Consecutive failed (re)creations/resets of one sub-env before giving up.
MAX_SUB_ENV_RESTARTS = 10
# The runner's checkpoint component with its episode numbers and generators.
SAMPLING_STATE = "joint_sampling"

class NonFiniteEnvValueError(ValueError):
    """Raised when an env returns a nan or infinite observation or reward."""


def episode_seed(seed: Optional[int], env_index: int, episode: int) -> Optional[int]:
    """The ``reset()`` seed of sub-env ``env_index``'s ``episode``-th episode
    (from 0) on a runner seeded with ``seed``; None (unseeded) without a seed.
    It depends on nothing else, so a restored run starts the same episodes."""
    if seed is None:
        return None
    entropy = [seed & (2**64 - 1), env_index, episode]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1)


def episodes_per_sub_env(num_episodes: int, num_envs: int) -> np.ndarray:
    """How many of ``num_episodes`` each of ``num_envs`` sub-envs runs: an equal
    share, the remainder to the first ones. Fixing the shares before sampling
    keeps the evaluated episodes independent of their lengths."""
    shares = np.full(num_envs, num_episodes // num_envs, np.int64)
    shares[: num_episodes % num_envs] += 1
    return shares


class JointEnvRunner(MultiAgentEnvRunner):
    """EnvRunner that samples MAMT's joint transitions with batched actors.

    ``sample()`` takes the arguments of ``MultiAgentEnvRunner.sample()`` and
    returns a list holding one :class:`JointTransitions` chunk.
    """

    @override(MultiAgentEnvRunner)
    def __init__(self, config, **kwargs):
        self._actors: Optional[StackedActors] = None
        self._actors_stale = True
        # A local runner beside remote ones makes no env (make_env sets these).
        self._episodes_started = np.zeros(0, np.int64)
        self._replay_current_episodes = False
        super().__init__(config=config, **kwargs)
        self._agent_ids: List[str] = self.config.agent_ids()
        self._module_ids = [
            self.config.policy_mapping_fn(agent, None) for agent in self._agent_ids
        ]
        self._generator = torch.Generator()
        if self._seed is not None:
            self._generator.manual_seed(self._seed)
        else:
            self._generator.seed()
        self._random_action_rng = np.random.default_rng(self._seed)

    @override(MultiAgentEnvRunner)
    def make_env(self):
        super().make_env()
        # The spec the sub-envs were made from, kept to recreate one of them
        # (another EnvRunner in this process may re-register the id).
        self._sub_env_spec = gym.envs.registration.registry[RLLIB_MULTI_AGENT_ENV_ID]
        self._sub_envs = [env.unwrapped for env in self.env.envs]
        self._actors = None
        self._needs_initial_reset = True
        self._episodes_started = np.zeros(self.num_envs, np.int64)
        self._replay_current_episodes = False

    @override(MultiAgentEnvRunner)
    def get_state(self, components=None, *, not_components=None, **kwargs):
        state = super().get_state(components, not_components=not_components, **kwargs)
        if self._check_component(SAMPLING_STATE, components, not_components):
            state[SAMPLING_STATE] = {
                "episodes_started": self._episodes_started.tolist(),
                "action_generator": self._generator.get_state().numpy().tobytes(),
                "random_action_generator": json.dumps(self._random_action_rng.bit_generator.state),
            }
        return state

    @override(MultiAgentEnvRunner)
    def set_state(self, state) -> None:
        super().set_state(state)
        self._actors_stale = True
        sampling = state.get(SAMPLING_STATE)
        # An Algorithm restores its evaluation runner from the training
        # runner's state: only the training runner takes the sampling state.
        if sampling is None or self.config.in_evaluation:
            return
        episodes = np.asarray(sampling["episodes_started"], np.int64)
        if episodes.shape != (self.num_envs,):
            raise ValueError(
                f"JointEnvRunner state '{SAMPLING_STATE}' has episode numbers for "
                f"{episodes.size} sub-envs, but num_envs_per_env_runner is {self.num_envs}; "
                "restore with the checkpoint's num_envs_per_env_runner"
            )
        self._episodes_started = episodes
        self._generator.set_state(
            torch.frombuffer(bytearray(sampling["action_generator"]), dtype=torch.uint8))
        self._random_action_rng.bit_generator.state = json.loads(
            sampling["random_action_generator"])
        self._needs_initial_reset = True
        self._replay_current_episodes = True

    def _stacked_actors(self) -> StackedActors:
        if self._actors is None:
            spaces = {
                agent: self._sub_envs[0].get_observation_space(agent)
                for agent in self._agent_ids
            }
            self._actors = StackedActors(
                self.module, self._agent_ids, spaces, self.num_envs,
                exploration_noise_std=getattr(self.config, "exploration_noise_std", None),
            )
            self._slots = [
                self._actors.observation_slot(index)
                for index in range(len(self._agent_ids))
            ]
            self._action_spaces = [
                self._sub_envs[0].get_action_space(agent) for agent in self._agent_ids
            ]
            self._action_dtype = action_column_layout(
                dict(zip(self._agent_ids, self._action_spaces)), self._agent_ids
            )[0]
            self._flatteners = [observation_flattener(spaces[a]) for a in self._agent_ids]
        elif self._actors_stale:
            self._actors.refresh()
        self._actors_stale = False
        return self._actors

    def _write_observations(self, env_index: int, observations, alive=None) -> None:
        """Writes the flattened observations of the agents alive (all if None)."""
        for agent_index, agent in enumerate(self._agent_ids):
            if alive is not None and not alive[agent_index]:
                continue
            group, slot = self._slots[agent_index]
            try:
                value = observations[agent]
            except KeyError:
                raise AgentsNotSynchronousError(
                    f"Agent '{agent}' has no observation at a step of env "
                    f"{env_index}. MAMT's joint replay buffer and centralized critic "
                    f"need every agent (all of {self._agent_ids}) to act at every "
                    "environment step."
                ) from None
            flatten = self._flatteners[agent_index]
            group.observations[slot, env_index] = (
                np.reshape(value, -1) if flatten is None else flatten(value)
            )

    def _check_finite_observations(self, env_indices, after_reset: bool) -> None:
        """Raises a one-line error naming the agent, env and episode step of the
        first non-finite observation (nan, inf, or beyond float32's range) of
        the envs ``env_indices``."""
        for group in self._actors.groups:
            observations = group.observations[:, env_indices]
            if np.isfinite(observations).all():
                continue
            slot, position = np.argwhere(~np.isfinite(observations).all(-1))[0]
            env_index = np.arange(self.num_envs)[env_indices][position]
            raise NonFiniteEnvValueError(
                f"Env {env_index} returned a non-finite observation (nan/inf, or "
                f"beyond float32's range) for agent '{group.agent_ids[slot]}' at step "
                f"{0 if after_reset else self._episode_lengths[env_index] + 1} "
                "of its episode (0 = reset); fix the env: MAMT's networks and "
                "replay buffer need finite observations."
            )

    def _check_finite_rewards(self, rewards: np.ndarray) -> None:
        if np.isfinite(rewards).all():
            return
        env_index, agent_index = np.argwhere(~np.isfinite(rewards))[0]
        raise NonFiniteEnvValueError(
            f"Env {env_index} returned a non-finite reward "
            f"{rewards[env_index, agent_index]} for agent "
            f"'{self._agent_ids[agent_index]}' at step "
            f"{self._episode_lengths[env_index] + 1} of its episode; fix the env: "
            "MAMT's critic targets need finite rewards."
        )

    def _restart_sub_env(self, env_index: int, error: Exception) -> None:
        """Recreates one failed sub-env from the env creator (as
        ``MultiAgentEnvRunner.make_env`` creates it) and counts the failure."""
        logger.exception(
            "JointEnvRunner: sub-env %d failed (%r); recreating it because "
            "restart_failed_sub_environments=True and dropping its unfinished "
            "episode's rows of this sample.", env_index, error,
        )
        self.metrics.log_value(NUM_ENV_STEP_FAILURES_LIFETIME, 1, reduce="lifetime_sum")
        try:
            self.env.envs[env_index].close()
        except Exception as close_error:
            logger.warning("Closing failed sub-env %d also failed: %r",
                           env_index, close_error)
        self.env.envs[env_index] = gym.make(self._sub_env_spec)
        self._sub_envs[env_index] = self.env.envs[env_index].unwrapped

    def _reset_sub_env(self, env_index: int, seed: Optional[int]):
        """``reset()`` of one sub-env, recreating it on failure if configured."""
        for attempt in range(MAX_SUB_ENV_RESTARTS + 1):
            try:
                return self._sub_envs[env_index].reset(seed=seed)
            except Exception as error:
                if (not self.config.restart_failed_sub_environments
                        or attempt == MAX_SUB_ENV_RESTARTS):
                    raise
                self._restart_sub_env(env_index, error)

    def _reset_env(self, env_index: int, seed: Optional[int]) -> None:
        observations, _ = self._reset_sub_env(env_index, seed)
        self._write_observations(env_index, observations)
        self._check_finite_observations([env_index], after_reset=True)
        self._alive[env_index] = True
        self._agent_lengths[env_index] = 0
        self._episode_returns[env_index] = 0.0
        self._episode_lengths[env_index] = 0
        self._episode_starts[env_index] = time.perf_counter()

    def _start_episode(self, env_index: int) -> None:
        """Resets one sub-env into its next episode, seeded by :func:`episode_seed`."""
        episode = self._episodes_started[env_index]
        self._episodes_started[env_index] += 1
        self._reset_env(env_index, episode_seed(self._seed, env_index, int(episode)))

    def _reset_all_envs(self, first_episodes: bool = False) -> None:
        """Starts an episode in every sub-env: the first ones again with
        ``first_episodes`` (a fixed set per ``sample(num_episodes=...)`` call),
        the ones they were in after a restore, else the next ones."""
        if first_episodes:
            self._episodes_started[:] = 0
        elif self._replay_current_episodes:
            self._episodes_started = np.maximum(self._episodes_started - 1, 0)
        self._replay_current_episodes = False
        num_agents = len(self._agent_ids)
        self._episode_returns = np.zeros((self.num_envs, num_agents), np.float64)
        self._episode_lengths = np.zeros(self.num_envs, np.int64)
        self._agent_lengths = np.zeros((self.num_envs, num_agents), np.int64)
        self._alive = np.ones((self.num_envs, num_agents), bool)
        self._episode_starts = np.zeros(self.num_envs, np.float64)
        for env_index in range(self.num_envs):
            self._start_episode(env_index)
        self._needs_initial_reset = False

    def _random_actions(self) -> np.ndarray:
        """Uniformly random actions in the layout of ``StackedActors.actions``."""
        if not self._actors.continuous:
            return np.stack([
                self._random_action_rng.integers(0, space.n, self.num_envs)
                for space in self._action_spaces
            ])
        actions = np.zeros(
            (len(self._agent_ids), self.num_envs, self._actors.action_width), np.float32
        )
        for index, space in enumerate(self._action_spaces):
            low = np.asarray(space.low, np.float32).reshape(-1)
            high = np.asarray(space.high, np.float32).reshape(-1)
            actions[index, :, : low.size] = np.clip(
                self._random_action_rng.uniform(low, high, (self.num_envs, low.size)),
                low, high,
            )
        return actions

    def _actions_per_env(self, actions: np.ndarray) -> list:
        """Per sub-env, each agent's action as its env takes it: a Python int,
        or the Box action (unpadded, in the Box's shape, clipped to its bounds:
        a Gaussian actor's stored sample may lie outside them)."""
        if not self._actors.continuous:
            return actions.T.tolist()
        per_env = np.swapaxes(actions, 0, 1).astype(self._action_dtype)
        return [
            [np.clip(row[k, : space.low.size].reshape(space.shape), space.low, space.high)
             for k, space in enumerate(self._action_spaces)]
            for row in per_env
        ]

    def _group_snapshots(self, actors: StackedActors) -> List[np.ndarray]:
        return [group.observations.copy() for group in actors.groups]

    @override(MultiAgentEnvRunner)
    def _sample(self, **kwargs) -> List[JointTransitions]:
        # The per-step forward passes are tiny matrix products: with several
        # intra-op threads on a busy machine, thread hand-offs cost up to 100x
        # the arithmetic (BENCHMARKS.md). A local EnvRunner shares its process
        # with the learner, so the thread count is restored afterwards.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._sample_single_threaded(**kwargs)
        finally:
            torch.set_num_threads(threads)

    def _sample_single_threaded(
        self,
        *,
        num_timesteps: Optional[int] = None,
        num_episodes: Optional[int] = None,
        explore: bool,
        random_actions: bool = False,
        force_reset: bool = False,
    ) -> List[JointTransitions]:
        actors = self._stacked_actors()
        if force_reset or num_episodes is not None or self._needs_initial_reset:
            self._reset_all_envs(first_episodes=num_episodes is not None)
        num_agents = len(self._agent_ids)
        count_agent_steps = self.config.count_steps_by == "agent_steps"
        observation_record, next_observation_record = [], []
        action_record, reward_record, terminal_record = [], [], []
        # Which rows to keep: a sub-env that fails loses its unfinished
        # episode's rows of this chunk (nothing half-done reaches the buffer).
        keep_record = []
        alive_record, next_alive_record = [], []
        episode_end_record = []
        episode_first_step = np.zeros(self.num_envs, np.int64)
        # With a number of episodes, each sub-env runs a fixed share of them and
        # then rests: keeping the first N episodes to finish would favour short
        # ones (episodes_per_sub_env).
        quotas = None if num_episodes is None else episodes_per_sub_env(
            num_episodes, self.num_envs
        )
        resting = np.zeros(self.num_envs, bool) if quotas is None else quotas == 0
        episodes_per_env = np.zeros(self.num_envs, np.int64)
        env_steps = episodes_done = 0
        done_metrics = []
        inference_seconds = 0.0

        def enough() -> bool:
            if num_timesteps is None:
                return episodes_done >= num_episodes
            steps = env_steps * num_agents if count_agent_steps else env_steps
            return steps >= num_timesteps

        while not enough():
            observation_record.append(self._group_snapshots(actors))
            if random_actions:
                actions = self._random_actions()
            else:
                started = time.perf_counter()
                actions = actors.actions(self._device, explore, self._generator)
                inference_seconds += time.perf_counter() - started
            rewards = np.zeros((self.num_envs, num_agents), np.float32)
            terminals = np.zeros(self.num_envs, np.float32)
            # A dead agent takes the fixed no-op action 0 (stored, not sampled).
            alive_record.append(self._alive.astype(np.float32))
            if not alive_record[-1].all():
                actions[~self._alive.T] = 0
            next_alive = np.ones((self.num_envs, num_agents), bool)
            finished, failed = [], []
            keep = np.ones(self.num_envs, bool)
            per_env_actions = self._actions_per_env(actions)
            for env_index, env in enumerate(self._sub_envs):
                if resting[env_index]:
                    keep[env_index] = False
                    continue
                alive = self._alive[env_index]
                action_dict = {
                    agent: action
                    for agent, action, is_alive in zip(
                        self._agent_ids, per_env_actions[env_index], alive
                    )
                    if is_alive
                }
                try:
                    step = env.step(action_dict)
                except Exception as error:
                    if not self.config.restart_failed_sub_environments:
                        raise
                    self._restart_sub_env(env_index, error)
                    failed.append(env_index)
                    keep[env_index] = False
                    for earlier in keep_record[episode_first_step[env_index]:]:
                        earlier[env_index] = False
                    continue
                over, terminals[env_index], next_alive[env_index] = self._record_step(
                    env_index, step, rewards[env_index]
                )
                if over:
                    finished.append(env_index)
            self._check_finite_observations(slice(None), after_reset=False)
            self._check_finite_rewards(rewards)
            next_observation_record.append(self._group_snapshots(actors))
            next_alive_record.append(next_alive.astype(np.float32))
            self._agent_lengths += alive_record[-1].astype(np.int64)
            self._zero_departed_observations(next_alive)
            action_record.append(np.swapaxes(actions, 0, 1).copy())
            episode_ends = np.zeros(self.num_envs, np.float32)
            episode_ends[finished] = 1.0
            episode_end_record.append(episode_ends)
            reward_record.append(rewards)
            terminal_record.append(terminals)
            keep_record.append(keep)
            env_steps += self.num_envs
            self._episode_returns += rewards
            self._episode_lengths += 1
            for env_index in finished:
                done_metrics.append(self._finished_episode_metrics(env_index))
                episodes_done += 1
                episodes_per_env[env_index] += 1
                if quotas is not None and episodes_per_env[env_index] >= quotas[env_index]:
                    resting[env_index] = True
            for env_index in finished + failed:
                if not resting[env_index]:
                    self._start_episode(env_index)
                episode_first_step[env_index] = len(keep_record)

        if num_episodes is not None:
            self._needs_initial_reset = True
        kept = np.concatenate(keep_record) if keep_record else np.ones(0, bool)
        kept_steps = int(kept.sum())
        agent_steps = (
            np.concatenate(alive_record)[kept].sum(0).astype(int).tolist()
            if keep_record else [0] * num_agents
        )
        self._log_sampled(kept_steps, agent_steps, done_metrics)
        if env_steps and not random_actions:
            self.metrics.log_value(
                RLMODULE_INFERENCE_TIMER, inference_seconds * self.num_envs / env_steps
            )
        if kept_steps == 0:
            return []
        rows = self._rows(
            actors, observation_record, next_observation_record,
            action_record, reward_record, terminal_record,
        )
        rows[ALIVE] = np.concatenate(alive_record)
        rows[NEXT_ALIVE] = np.concatenate(next_alive_record)
        rows[EPISODE_ENDS] = np.concatenate(episode_end_record)
        rows[ENV_INDICES] = np.tile(np.arange(self.num_envs), len(episode_end_record))
        if not kept.all():
            rows = {key: column[kept] for key, column in rows.items()}
        return [JointTransitions(rows, num_agents)]

    def _record_step(self, env_index: int, step, rewards: np.ndarray):
        """Writes one sub-env step of the agents alive before it; applies
        MAMT's episode-end rule (:mod:`rllib_mamt.episode_end`).

        An agent that terminates (or is truncated before the episode's end)
        leaves: its final observation is this row's o', and from the next row
        on it is dead (zero observation, action 0, alive = 0).

        Returns:
            (over, terminal, next_alive): whether the episode is over, the row's
            d, and the per-agent alive mask at o' (truncated agents at the
            episode's end stay alive at o': their targets bootstrap).
        """
        observations, step_rewards, terminateds, truncateds, _ = step
        alive = self._alive[env_index]
        everyone = bool(alive.all())
        self._write_observations(env_index, observations, None if everyone else alive)
        agents = self._agent_ids
        try:
            rewards[:] = (
                [step_rewards[a] for a in agents] if everyone
                else [step_rewards[a] if live else 0.0 for a, live in zip(agents, alive)]
            )
        except KeyError as missing:
            raise AgentsNotSynchronousError(
                f"Agent {missing} got no reward at a step of env {env_index}. "
                "MAMT's joint replay buffer needs the reward of every agent still "
                "in the episode at every environment step."
            ) from None
        if "__all__" not in terminateds or "__all__" not in truncateds:
            raise ValueError(
                f"Env {env_index} returned terminateds/truncateds without the "
                "'__all__' key that RLlib's MultiAgentEnv API requires; wrap "
                "PettingZoo envs in rllib_mamt.envs.PettingZooMultiAgentEnv."
            )
        if not (any(terminateds.values()) or any(truncateds.values())):
            return False, 0.0, alive.copy()  # nobody left: the common step
        # MAMT's episode-end rule, whatever the env's own '__all__' convention
        # (RLlib's ParallelPettingZooEnv sets neither flag when some agents
        # terminate and the others are truncated).
        departed_before = [a for a, live in zip(agents, alive) if not live]
        over, terminal = episode_end(agents, terminateds, truncateds, departed_before)
        terminated_now = np.array([bool(terminateds.get(a)) for a in agents]) & alive
        truncated_now = np.array([bool(truncateds.get(a)) for a in agents]) & alive
        if over:
            next_alive = alive & ~terminated_now
        else:
            next_alive = alive & ~terminated_now & ~truncated_now
        self._alive[env_index] = next_alive
        return over, float(terminal), next_alive

    def _zero_departed_observations(self, next_alive: np.ndarray) -> None:
        """Dead agents observe zeros (after their final o' has been recorded)."""
        if next_alive.all():
            return
        for agent_index, (group, slot) in enumerate(self._slots):
            dead = ~next_alive[:, agent_index]
            if dead.any():
                group.observations[slot, dead] = 0.0

    def _rows(self, actors, observation_record, next_observation_record,
              action_record, reward_record, terminal_record):
        rows = {}
        for group_index, group in enumerate(actors.groups):
            observations = np.stack([step[group_index] for step in observation_record], 1)
            next_observations = np.stack(
                [step[group_index] for step in next_observation_record], 1
            )
            for slot, agent_index in enumerate(group.agent_indices):
                rows[obs_key(agent_index)] = observations[slot].reshape(
                    -1, observations.shape[-1]
                )
                rows[next_obs_key(agent_index)] = next_observations[slot].reshape(
                    -1, next_observations.shape[-1]
                )
        rows[ACTIONS] = np.concatenate(action_record).astype(self._action_dtype)
        rows[REWARDS] = np.concatenate(reward_record)
        rows[TERMINATEDS] = np.concatenate(terminal_record)
        return rows

    def _finished_episode_metrics(self, env_index: int):
        returns = self._episode_returns[env_index]
        length = int(self._episode_lengths[env_index])
        return (
            length,
            float(returns.sum()),
            time.perf_counter() - self._episode_starts[env_index],
            {agent: float(r) for agent, r in zip(self._agent_ids, returns)},
            {module: float(r) for module, r in zip(self._module_ids, returns)},
            {agent: int(steps) for agent, steps in
             zip(self._agent_ids, self._agent_lengths[env_index])},
        )

    def _log_sampled(self, env_steps: int, agent_steps: List[int], done_metrics) -> None:
        """Logs the counters and episode statistics MultiAgentEnvRunner logs."""
        self.metrics.log_value(NUM_ENV_STEPS_SAMPLED, env_steps, reduce="sum")
        self.metrics.log_value(
            NUM_ENV_STEPS_SAMPLED_LIFETIME, env_steps, reduce="lifetime_sum",
            with_throughput=True,
        )
        self.metrics.log_value(NUM_EPISODES, len(done_metrics), reduce="sum")
        self.metrics.log_value(
            NUM_EPISODES_LIFETIME, len(done_metrics), reduce="lifetime_sum"
        )
        for agent, module, steps in zip(self._agent_ids, self._module_ids, agent_steps):
            self.metrics.log_value((NUM_AGENT_STEPS_SAMPLED, agent), steps, reduce="sum")
            self.metrics.log_value(
                (NUM_AGENT_STEPS_SAMPLED_LIFETIME, agent), steps, reduce="lifetime_sum"
            )
            self.metrics.log_value((NUM_MODULE_STEPS_SAMPLED, module), steps, reduce="sum")
            self.metrics.log_value(
                (NUM_MODULE_STEPS_SAMPLED_LIFETIME, module), steps,
                reduce="lifetime_sum",
            )
        for episode in done_metrics:
            self._log_episode_metrics(*episode)

"""The joint replay buffer D of Algorithm 2: one row per environment step.

RLlib's ``MultiAgentEpisodeReplayBuffer`` samples each module independently, so
its rows do not line up in time (DESIGN.md §4); a centralized critic needs the
whole joint transition ``({o_i}, {a_i}, {r_i}, {o'_i}, d)`` of one step. This
buffer stores exactly that, with agents in sorted order, in preallocated numpy
ring arrays, and samples whole joint rows uniformly ("batch handling: shuffle
transitions", Table 3). Observation columns are kept in the narrowest dtype that
stores them without loss (:mod:`rllib_mamt.lossless_storage`) and read back as
float32. The ACTIONS column follows the action spaces
(:func:`action_column_layout`): integer indices ``(rows, n_agents)`` for
discrete actions, float vectors ``(rows, n_agents, action_dim)`` in the Boxes'
own dtype for continuous ones.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import gymnasium as gym
import numpy as np

from rllib_mamt.joint_transitions import JointTransitions
from rllib_mamt.lossless_storage import STORAGE_DTYPES, narrowest_lossless_dtype

ACTIONS = "actions"
REWARDS = "rewards"
TERMINATEDS = "terminateds"
# Per-agent alive masks (1 = in the episode): ALIVE at o (the agent acted),
# NEXT_ALIVE at o' (0 once it has left: terminated, or truncated before the
# episode's end). Rows without them (older checkpoints, RLlib's episodes, in
# which every agent acts at every step) are all-alive.
ALIVE = "alive"
NEXT_ALIVE = "next_alive"


def action_column_layout(
    action_spaces: Optional[Dict[str, gym.Space]], agent_ids: Sequence[str]
) -> Tuple[np.dtype, Tuple[int, ...]]:
    """The dtype and per-row shape of the ACTIONS column for these action spaces.

    Without action spaces, or with non-Box ones (Discrete), one int64 action
    index per agent: ``(n_agents,)``. With Box spaces, each agent's flattened
    action vector in the Boxes' common float dtype, zero-padded to the longest:
    ``(n_agents, max_action_dim)``, so storage is lossless.

    Raises:
        ValueError: If Box and non-Box action spaces are mixed, or a Box has a
            non-float dtype.
    """
    agent_ids = list(agent_ids)
    if not action_spaces:
        return np.dtype(np.int64), (len(agent_ids),)
    spaces = [action_spaces[agent] for agent in agent_ids]
    boxes = [isinstance(space, gym.spaces.Box) for space in spaces]
    if not any(boxes):
        return np.dtype(np.int64), (len(agent_ids),)
    if not all(boxes):
        raise ValueError(
            "JointReplayBuffer: 'action_spaces' = "
            f"{dict(zip(agent_ids, spaces))} is invalid; allowed: all agents with "
            "Box actions or none (one ACTIONS column holds every agent's action)."
        )
    for agent, space in zip(agent_ids, spaces):
        if not np.issubdtype(space.dtype, np.floating):
            raise ValueError(
                f"JointReplayBuffer: agent '{agent}' has action space {space}; "
                "allowed: a Box with a float dtype."
            )
    dtype = np.result_type(*[space.dtype for space in spaces])
    width = max(gym.spaces.utils.flatdim(space) for space in spaces)
    return dtype, (len(agent_ids), width)


def with_alive_masks(columns: Dict[str, np.ndarray], num_agents: int) -> Dict[str, np.ndarray]:
    """``columns`` with all-alive ALIVE / NEXT_ALIVE masks added if they are absent."""
    if ALIVE in columns:
        return columns
    ones = np.ones((len(columns[ACTIONS]), num_agents), np.float32)
    return {**columns, ALIVE: ones, NEXT_ALIVE: ones}


def obs_key(agent_index: int) -> str:
    """Batch column holding the observation o_i of the agent at ``agent_index``."""
    return f"obs_{agent_index}"


def next_obs_key(agent_index: int) -> str:
    """Batch column holding the next observation o'_i of that agent."""
    return f"next_obs_{agent_index}"


class AgentsNotSynchronousError(ValueError):
    """Raised for an environment in which not every agent acts at every step."""


class JointReplayBuffer:
    """Ring buffer of joint transitions, aligned per environment step.

    Args:
        capacity: Maximum number of joint transitions kept (Table 3: 1,000,000).
        agent_ids: Agent ids, in the order used for every column (sorted).
        observation_sizes: Flat observation size per agent id.
        seed: Seed of the buffer's own sampling generator.
        action_spaces: Action space per agent id; they choose the ACTIONS
            column's layout (:func:`action_column_layout`). None stores
            discrete action indices.
    """

    def __init__(
        self,
        capacity: int,
        agent_ids: Sequence[str],
        observation_sizes: Dict[str, int],
        seed: Optional[int] = None,
        action_spaces: Optional[Dict[str, gym.Space]] = None,
    ):
        self.capacity = int(capacity)
        self.agent_ids = list(agent_ids)
        self.num_agents = len(self.agent_ids)
        self._columns: Dict[str, np.ndarray] = {}
        self._observation_keys = []
        for index, agent in enumerate(self.agent_ids):
            size = int(observation_sizes[agent])
            for key in (obs_key(index), next_obs_key(index)):
                self._columns[key] = np.zeros((capacity, size), STORAGE_DTYPES[0])
                self._observation_keys.append(key)
        action_dtype, action_shape = action_column_layout(action_spaces, self.agent_ids)
        self._columns[ACTIONS] = np.zeros((capacity,) + action_shape, action_dtype)
        self._columns[REWARDS] = np.zeros((capacity, self.num_agents), np.float32)
        self._columns[TERMINATEDS] = np.zeros((capacity,), np.float32)
        for key in (ALIVE, NEXT_ALIVE):
            self._columns[key] = np.ones((capacity, self.num_agents), np.float32)
        self._next_index = 0
        self._size = 0
        self._reward_sum = np.zeros(self.num_agents, np.float64)
        self._reward_square_sum = np.zeros(self.num_agents, np.float64)
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self._size

    def add(self, rows: Dict[str, np.ndarray]) -> None:
        """Appends joint rows given column by column (all of equal length)."""
        count = len(rows[ACTIONS])
        if count == 0:
            return
        rows = with_alive_masks(rows, self.num_agents)
        self._check_actions(rows[ACTIONS])
        if count > self.capacity:
            rows = {key: value[-self.capacity:] for key, value in rows.items()}
            count = self.capacity
        self._widen_observation_columns(rows)
        positions = (self._next_index + np.arange(count)) % self.capacity
        overwritten = self._columns[REWARDS][positions[positions < self._size]]
        self._reward_sum -= overwritten.astype(np.float64).sum(axis=0)
        self._reward_square_sum -= (overwritten.astype(np.float64) ** 2).sum(axis=0)
        for key, column in self._columns.items():
            column[positions] = rows[key]
        new_rewards = self._columns[REWARDS][positions].astype(np.float64)
        self._reward_sum += new_rewards.sum(axis=0)
        self._reward_square_sum += (new_rewards**2).sum(axis=0)
        self._next_index = int((self._next_index + count) % self.capacity)
        self._size = min(self.capacity, self._size + count)

    def _check_actions(self, actions: np.ndarray) -> None:
        """Rejects actions whose shape differs from the ACTIONS column's or
        whose float values the column's dtype would round."""
        column = self._columns[ACTIONS]
        actions = np.asarray(actions)
        lossy = np.issubdtype(column.dtype, np.floating) and not np.can_cast(
            actions.dtype, column.dtype, "safe"
        )
        if actions.shape[1:] != column.shape[1:] or lossy:
            raise ValueError(
                f"JointReplayBuffer: 'actions' of shape {actions.shape[1:]} per row "
                f"and dtype {actions.dtype} are invalid; allowed: shape "
                f"{column.shape[1:]} per row in a dtype that casts to {column.dtype} "
                "without loss (the layout follows the action spaces given to the buffer)."
            )

    def _widen_observation_columns(self, rows: Dict[str, np.ndarray]) -> None:
        """Widens an observation column whose new values its dtype cannot hold."""
        for key in self._observation_keys:
            column = self._columns[key]
            dtype = narrowest_lossless_dtype(rows[key], column.dtype)
            if dtype != column.dtype:
                self._columns[key] = column.astype(dtype)

    def bytes_per_row(self) -> int:
        """Bytes one joint row takes in this buffer's current column dtypes."""
        return int(sum(
            column.itemsize * int(np.prod(column.shape[1:]))
            for column in self._columns.values()
        ))

    def add_episodes(self, episodes: List) -> int:
        """Stores sampled data: ``JointTransitions`` chunks from MAMT's
        ``JointEnvRunner`` as they are, RLlib ``MultiAgentEpisode`` chunks (from
        RLlib's ``MultiAgentEnvRunner``) after converting them to joint rows.

        Returns:
            The number of joint transitions added.

        Raises:
            AgentsNotSynchronousError: If an agent is missing from a step.
        """
        added = 0
        for episode in episodes:
            if isinstance(episode, JointTransitions):
                rows = episode.rows
            else:
                rows = self._episode_to_rows(episode)
            if rows is not None:
                self.add(rows)
                added += len(rows[ACTIONS])
        return added

    def _episode_to_rows(self, episode) -> Optional[Dict[str, np.ndarray]]:
        length = len(episode)
        if length == 0:
            return None
        for agent in self.agent_ids:
            agent_episode = episode.agent_episodes.get(agent)
            acted = 0 if agent_episode is None else len(agent_episode)
            if acted != length:
                raise AgentsNotSynchronousError(
                    f"Agent '{agent}' acted in {acted} of {length} steps of an "
                    "episode chunk. MAMT's joint replay buffer and centralized "
                    "critic need every agent (all of "
                    f"{self.agent_ids}) to act at every environment step on RLlib's "
                    "EnvRunner; MAMT's JointEnvRunner (the default) supports agents "
                    "that leave the episode early."
                )
        rows: Dict[str, np.ndarray] = {}
        actions, rewards = [], []
        for index, agent in enumerate(self.agent_ids):
            agent_episode = episode.agent_episodes[agent]
            observations = np.asarray(agent_episode.get_observations(), np.float32)
            observations = observations.reshape(length + 1, -1)
            rows[obs_key(index)] = observations[:-1]
            rows[next_obs_key(index)] = observations[1:]
            actions.append(np.asarray(agent_episode.get_actions()).reshape(length, -1))
            rewards.append(np.asarray(agent_episode.get_rewards(), np.float32))
        rows[ACTIONS] = self._action_rows(actions)
        rows[REWARDS] = np.stack(rewards, axis=1)
        terminateds = np.zeros(length, np.float32)
        # RLlib marks every agent of an episode whose agents are all done as
        # terminated, truncated ones too (keeping their truncated flag), so a
        # termination on a time-limit step cannot be told apart here and is
        # bootstrapped; MAMT's JointEnvRunner reads the env's flags exactly.
        terminateds[-1] = float(all(
            episode.agent_episodes[agent].is_terminated
            and not episode.agent_episodes[agent].is_truncated
            for agent in self.agent_ids
        ))
        rows[TERMINATEDS] = terminateds
        return rows

    def _action_rows(self, per_agent: List[np.ndarray]) -> np.ndarray:
        """Per-agent ``(length, action_size)`` actions in the ACTIONS column's
        layout (Box actions zero-padded to the column's width)."""
        column = self._columns[ACTIONS]
        if column.ndim == 2:
            return np.concatenate(per_agent, axis=1).astype(np.int64)
        rows = np.zeros((len(per_agent[0]),) + column.shape[1:], column.dtype)
        for index, actions in enumerate(per_agent):
            rows[:, index, : actions.shape[1]] = actions
        return rows

    def reward_statistics(self):
        """Per-agent mean and standard deviation of the rewards now stored."""
        count = max(self._size, 1)
        mean = self._reward_sum / count
        variance = np.maximum(self._reward_square_sum / count - mean**2, 0.0)
        return mean.astype(np.float32), np.sqrt(variance).astype(np.float32)

    def sample(self, num_rows: int, standardize_rewards: bool = False):
        """Samples ``num_rows`` whole joint rows uniformly, with replacement.

        Args:
            num_rows: How many joint transitions to return.
            standardize_rewards: If True, rewards are shifted and scaled per agent
                by the mean and standard deviation of all stored rewards (as the
                MAAC reference buffer does by default).
        """
        if self._size == 0:
            raise ValueError("Cannot sample from an empty JointReplayBuffer.")
        indices = self._rng.integers(0, self._size, size=num_rows)
        batch = {key: column[indices] for key, column in self._columns.items()}
        for key in self._observation_keys:
            batch[key] = batch[key].astype(np.float32, copy=False)
        if standardize_rewards:
            mean, std = self.reward_statistics()
            batch[REWARDS] = (batch[REWARDS] - mean) / np.maximum(std, 1e-6)
        return batch

    def get_state(self) -> Dict:
        """Everything needed to continue sampling exactly where this buffer is.

        The columns are views of the stored rows, not copies (a paper-scale
        buffer is GBs): serialise the state before the buffer changes.
        """
        return {
            "columns": {k: v[: self._size] for k, v in self._columns.items()},
            "next_index": self._next_index,
            "size": self._size,
            "reward_sum": self._reward_sum.copy(),
            "reward_square_sum": self._reward_square_sum.copy(),
            "rng": self._rng.bit_generator.state,
        }

    def set_state(self, state: Dict) -> None:
        """Restores a state returned by :meth:`get_state`."""
        size = state["size"]
        if size > self.capacity:
            raise ValueError(
                f"Replay buffer state holds {size} rows but capacity is "
                f"{self.capacity}; raise 'replay_buffer_capacity'."
            )
        columns = with_alive_masks(state["columns"], self.num_agents)
        for key, column in self._columns.items():
            stored = np.asarray(columns[key])
            if key in self._observation_keys and stored.dtype != column.dtype:
                column = np.zeros(column.shape, stored.dtype)
                self._columns[key] = column
            column[:size] = stored
        self._size = size
        self._next_index = state["next_index"]
        self._reward_sum = state["reward_sum"].copy()
        self._reward_square_sum = state["reward_square_sum"].copy()
        self._rng.bit_generator.state = state["rng"]

"""Rover-Tower (paper Appendix G.1; MAAC's multi_speaker_listener scenario).

Written from the specification in DESIGN.md §5. Rovers cannot see; each is
paired at random with a tower that sees the rover's position and its goal
landmark and can only send one of 5 discrete messages. A pair is rewarded by
the rover's squared distance to the goal (both members get it, no sharing
across pairs), plus a bonus when the rover is close.

Agents ``rover_0..rover_{p-1}`` then ``tower_0..tower_{p-1}`` (p = ``n_pairs``).
Observations: rover (p + 5 + 2 + 2) = one-hot of its tower, that tower's
current message, own position, own velocity; tower (p + 2 + 2) = one-hot of its
rover, the rover's position, the goal landmark's position. A tower's action is
its message and is visible to its rover in the observation returned by the
same ``step``.
"""

from typing import Any, Dict, Mapping, Optional

import gymnasium as gym
import numpy as np
from pettingzoo.utils.env import ParallelEnv

from rllib_mamt.envs.env_config_validation import EnvKey, validate_env_config

MESSAGE_SIZE = 5
DT = 0.1
DAMPING = 0.25
MAX_SPEED = 1.0
FORCE = 2.25  # action sensitivity 1.5 x rover acceleration 1.5
MASS = 1.0
ROVER_SIZE = 0.075
LANDMARK_SIZE = 0.04
BONUS_REWARD = 10.0
BONUS_THRESHOLD = 0.1725  # on the squared distance
ROVER_MOVES = np.array([[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1]], dtype=np.float64)

ROVER_TOWER_KEYS = {
    "n_pairs": EnvKey(4, (int,), lambda v: v >= 1, "an int >= 1"),
    "n_landmarks": EnvKey(6, (int,), lambda v: v >= 1, "an int >= 1"),
    "max_cycles": EnvKey(25, (int,), lambda v: v >= 1, "an int >= 1"),
    "render_mode": EnvKey(
        None, (str, type(None)), lambda v: v in (None, "rgb_array"), "None or 'rgb_array'"
    ),
}


class RoverTowerEnv(ParallelEnv):
    """The Rover-Tower task as a PettingZoo ParallelEnv.

    Args:
        n_pairs: Number of rover-tower pairs (paper: 4).
        n_landmarks: Number of candidate goal landmarks (paper: 6).
        max_cycles: Episode length in steps (default 25); episodes are
            truncated, never terminated.
        render_mode: None or "rgb_array" (a 256 x 256 RGB image).
    """

    metadata = {"render_modes": ["rgb_array"], "name": "rover_tower_v0", "is_parallelizable": True}

    def __init__(self, n_pairs: int = 4, n_landmarks: int = 6, max_cycles: int = 25,
                 render_mode: Optional[str] = None):
        settings = validate_env_config(
            "rover_tower",
            {"n_pairs": n_pairs, "n_landmarks": n_landmarks, "max_cycles": max_cycles,
             "render_mode": render_mode},
            ROVER_TOWER_KEYS,
        )
        self.n_pairs = settings["n_pairs"]
        self.n_landmarks = settings["n_landmarks"]
        self.max_cycles = settings["max_cycles"]
        self.render_mode = settings["render_mode"]
        self.rovers = [f"rover_{k}" for k in range(self.n_pairs)]
        self.towers = [f"tower_{k}" for k in range(self.n_pairs)]
        self.possible_agents = self.rovers + self.towers
        self.agents = []
        rover_size = self.n_pairs + MESSAGE_SIZE + 4
        tower_size = self.n_pairs + 4
        self.observation_spaces = {
            **{a: gym.spaces.Box(-np.inf, np.inf, (rover_size,), np.float32) for a in self.rovers},
            **{a: gym.spaces.Box(-np.inf, np.inf, (tower_size,), np.float32) for a in self.towers},
        }
        self.action_spaces = {a: gym.spaces.Discrete(5) for a in self.possible_agents}
        self._rng = np.random.default_rng()
        self._reset_state()

    def _reset_state(self):
        p = self.n_pairs
        self.tower_to_rover = self._rng.permutation(p)
        self.rover_to_tower = np.argsort(self.tower_to_rover)
        self.goal_landmark = self._rng.integers(0, self.n_landmarks, size=p)
        self.landmark_positions = self._rng.uniform(-1, 1, (self.n_landmarks, 2))
        self.rover_positions = self._rng.uniform(-1, 1, (p, 2))
        self.rover_velocities = np.zeros((p, 2))
        self.messages = np.zeros((p, MESSAGE_SIZE))
        self._steps = 0

    def observation_space(self, agent):
        return self.observation_spaces[agent]

    def action_space(self, agent):
        return self.action_spaces[agent]

    def reset(self, seed: Optional[int] = None, options: Optional[dict] = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._reset_state()
        self.agents = list(self.possible_agents)
        return self._observations(), {agent: {} for agent in self.agents}

    def _observations(self) -> Dict[str, np.ndarray]:
        eye = np.eye(self.n_pairs)
        observations = {}
        for r, rover in enumerate(self.rovers):
            tower = self.rover_to_tower[r]
            observations[rover] = np.concatenate(
                [eye[tower], self.messages[tower], self.rover_positions[r], self.rover_velocities[r]]
            ).astype(np.float32)
        for t, tower in enumerate(self.towers):
            rover = self.tower_to_rover[t]
            observations[tower] = np.concatenate(
                [eye[rover], self.rover_positions[rover],
                 self.landmark_positions[self.goal_landmark[t]]]
            ).astype(np.float32)
        return observations

    def pair_rewards(self) -> np.ndarray:
        """Reward of each pair t (indexed by tower) for the current positions."""
        goals = self.landmark_positions[self.goal_landmark]
        squared = ((self.rover_positions[self.tower_to_rover] - goals) ** 2).sum(-1)
        return -squared + BONUS_REWARD * (squared < BONUS_THRESHOLD)

    def step(self, actions: Mapping[str, Any]):
        if not self.agents:
            raise RuntimeError("step() called on a finished episode; call reset() first.")
        for t, tower in enumerate(self.towers):
            self.messages[t] = np.eye(MESSAGE_SIZE)[int(actions[tower])]
        forces = FORCE * ROVER_MOVES[[int(actions[rover]) for rover in self.rovers]]
        velocities = (1.0 - DAMPING) * self.rover_velocities + forces / MASS * DT
        speeds = np.linalg.norm(velocities, axis=-1, keepdims=True)
        velocities = np.where(speeds > MAX_SPEED, velocities / np.maximum(speeds, 1e-12) * MAX_SPEED, velocities)
        self.rover_velocities = velocities
        self.rover_positions = self.rover_positions + velocities * DT
        self._steps += 1

        pair_rewards = self.pair_rewards()
        rewards = {}
        for t, tower in enumerate(self.towers):
            rewards[tower] = float(pair_rewards[t])
            rewards[self.rovers[self.tower_to_rover[t]]] = float(pair_rewards[t])
        observations = self._observations()
        done = self._steps >= self.max_cycles
        terminations = {agent: False for agent in self.agents}
        truncations = {agent: done for agent in self.agents}
        infos = {agent: {} for agent in self.agents}
        if done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        size = 256
        image = np.full((size, size, 3), 255, dtype=np.uint8)
        colours = (np.array([[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48],
                             [145, 30, 180], [70, 240, 240], [240, 50, 230], [128, 128, 0]])
                   [np.arange(self.n_pairs) % 8])
        rows, cols = np.mgrid[0:size, 0:size]

        def disc(position, radius, colour):
            centre = (np.asarray(position) + 1.5) / 3.0 * size  # view [-1.5, 1.5]^2
            mask = (cols - centre[0]) ** 2 + (rows - (size - centre[1])) ** 2 <= (radius / 3.0 * size) ** 2
            image[mask] = colour

        for landmark, position in enumerate(self.landmark_positions):
            goal_of = np.flatnonzero(self.goal_landmark == landmark)
            disc(position, 2 * LANDMARK_SIZE, colours[goal_of[0]] // 2 if len(goal_of) else (100, 100, 100))
        for t in range(self.n_pairs):
            disc(self.rover_positions[self.tower_to_rover[t]], ROVER_SIZE, colours[t])
        return image

    def close(self):
        pass


def make_rover_tower(env_config: Optional[Mapping[str, Any]] = None) -> RoverTowerEnv:
    """Builds Rover-Tower from an ``env_config`` (keys: n_pairs, n_landmarks,
    max_cycles, render_mode); unknown keys and bad values raise ValueError."""
    return RoverTowerEnv(**validate_env_config("rover_tower", env_config, ROVER_TOWER_KEYS))

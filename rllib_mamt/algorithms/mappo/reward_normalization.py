"""Reward normalisation by the running standard deviation of discounted returns.

This is the reward scaling of common PPO code (OpenAI baselines' and
Stable-Baselines3's ``VecNormalize(norm_reward=True)``): per sub-env and agent a
discounted return R <- gamma * R + r is accumulated step by step (and reset when
the episode ends); its running variance over all steps so far, kept in RLlib's
:class:`~ray.rllib.utils.filter.RunningStat`, scales every reward as
r / sqrt(var(R) + 1e-8). The rewards are not shifted (a shift would change
which policy is optimal in episodes of varying length) and not clipped.
"""

from typing import Dict

import numpy as np
from ray.rllib.utils.filter import RunningStat

from rllib_mamt.joint_replay_buffer import REWARDS
from rllib_mamt.joint_transitions import ENV_INDICES, EPISODE_ENDS

EPSILON = 1e-8


class ReturnScaler:
    """Scales each agent's rewards by the running std of its discounted returns.

    Args:
        num_agents: n; statistics are kept per agent.
        gamma: The discount of the returns.
    """

    def __init__(self, num_agents: int, gamma: float):
        self.num_agents = int(num_agents)
        self.gamma = float(gamma)
        self.statistics = RunningStat(shape=(self.num_agents,))
        # Open discounted returns per (chunk position, sub-env): the sample of
        # the k-th EnvRunner continues its sub-envs' episodes in the next one.
        self.open_returns: Dict[int, Dict[int, np.ndarray]] = {}

    def scale(self, rows: Dict[str, np.ndarray], chunk_position: int) -> Dict[str, np.ndarray]:
        """Records the discounted returns of one sub-env-sorted chunk and
        returns the chunk with its rewards scaled (the input is not changed)."""
        rewards = rows[REWARDS].astype(np.float64)
        open_returns = self.open_returns.setdefault(chunk_position, {})
        for env_index, reward, ends in zip(rows[ENV_INDICES].tolist(), rewards,
                                           rows[EPISODE_ENDS].tolist()):
            running = self.gamma * open_returns.get(env_index, 0.0) + reward
            self.statistics.push(running)
            open_returns[env_index] = np.zeros(self.num_agents) if ends else running
        scale = np.sqrt(self.statistics.var.astype(np.float64) + EPSILON)
        return {**rows, REWARDS: (rewards / scale).astype(np.float32)}

    def get_state(self) -> Dict:
        """Picklable state (statistics and open returns) for checkpoints."""
        return {
            "statistics": self.statistics.to_state(),
            "open_returns": {
                position: {env: value.copy() for env, value in envs.items()}
                for position, envs in self.open_returns.items()
            },
        }

    def set_state(self, state: Dict) -> None:
        """Restores :meth:`get_state`'s output."""
        self.statistics = RunningStat.from_state(state["statistics"])
        self.open_returns = {
            position: {env: np.asarray(value) for env, value in envs.items()}
            for position, envs in state["open_returns"].items()
        }

"""MA-PPO: PPO with decentralised actors and a centralised attention critic,
sampled on the JointEnvRunner (the paper's MA-PPO baseline, Table 6)."""

from rllib_mamt.algorithms.mappo.mappo import MAPPO
from rllib_mamt.algorithms.mappo.mappo_config import MAPPOConfig

__all__ = ["MAPPO", "MAPPOConfig"]

"""MADDPG (Lowe et al., 2017) on the joint replay buffer and the JointEnvRunner."""

from rllib_mamt.algorithms.maddpg.maddpg import MADDPG
from rllib_mamt.algorithms.maddpg.maddpg_config import MADDPGConfig

__all__ = ["MADDPG", "MADDPGConfig"]

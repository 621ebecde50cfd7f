"""MAMT-PPO: MAMT's trust-region decomposition driving a PPO backbone (the
backbone ablation of the paper's Table 10)."""

from rllib_mamt.algorithms.mamt_ppo.mamt_ppo import MAMTPPO
from rllib_mamt.algorithms.mamt_ppo.mamt_ppo_config import MAMTPPOConfig

__all__ = ["MAMTPPO", "MAMTPPOConfig"]

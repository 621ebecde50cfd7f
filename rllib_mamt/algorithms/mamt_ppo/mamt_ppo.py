"""MAMT-PPO as an RLlib ``Algorithm``: MA-PPO's training loop (sampling on the
JointEnvRunner, reward scaling, one learner update of ``num_epochs`` minibatch
epochs per iteration, checkpointed reward statistics) with MAMT-PPO's learner
(:mod:`rllib_mamt.algorithms.mamt_ppo.mamt_ppo_learner`)."""

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.utils.annotations import override

from rllib_mamt.algorithms.mamt_ppo.mamt_ppo_config import MAMTPPOConfig
from rllib_mamt.algorithms.mappo.mappo import MAPPO


class MAMTPPO(MAPPO):
    """PPO actors whose per-agent KL-penalty coefficients 1/delta_i come from
    MAMT's trust-region decomposition; see :class:`MAMTPPOConfig`."""

    @classmethod
    @override(Algorithm)
    def get_default_config(cls) -> MAMTPPOConfig:
        return MAMTPPOConfig(cls)

"""rllib_mamt: MAMT (ICLR 2022) and its MAAC / MAMD modes as an RLlib plugin.

Importing the package registers the algorithms ``MAMT``, ``MAMD``, ``MAAC``,
the baselines ``MADDPG``, ``MAPPO`` and ``LOLA`` and the backbone ablation
``MAMT_PPO`` (:mod:`rllib_mamt.algorithms`)
and the paper's environments with Ray Tune, so they work by name in
``tune.Tuner("MAMD", ...)`` and in tuned-example YAML files.
"""

from ray.tune.registry import register_trainable

from rllib_mamt.algorithms.lola import LOLA, LOLAConfig
from rllib_mamt.algorithms.maddpg import MADDPG, MADDPGConfig
from rllib_mamt.algorithms.mamt import MAAC, MAMD, MAMT, MAMTConfig
from rllib_mamt.algorithms.mamt_ppo import MAMTPPO, MAMTPPOConfig
from rllib_mamt.algorithms.mappo import MAPPO, MAPPOConfig
from rllib_mamt.envs.registry import register_environments
from rllib_mamt.joint_env_runner import JointEnvRunner
from rllib_mamt.legacy_module_paths import register_legacy_module_paths
from rllib_mamt.ray_notices import silence_unactionable_notices

__all__ = ["MAMT", "MAMD", "MAAC", "MAMTConfig", "MADDPG", "MADDPGConfig", "MAPPO",
           "MAPPOConfig", "LOLA", "LOLAConfig", "MAMTPPO", "MAMTPPOConfig", "JointEnvRunner"]
__version__ = "0.1.0"

ALGORITHMS = {"MAMT": MAMT, "MAMD": MAMD, "MAAC": MAAC, "MADDPG": MADDPG, "MAPPO": MAPPO,
              "LOLA": LOLA, "MAMT_PPO": MAMTPPO}


def register() -> None:
    """Registers algorithms and environments with Tune (idempotent)."""
    for name, algorithm in ALGORITHMS.items():
        register_trainable(name, algorithm)
    register_environments()


register()
register_legacy_module_paths()
silence_unactionable_notices()

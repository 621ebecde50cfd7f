"""The MAMT algorithm (Algorithms 2 and 3 of the paper) as an RLlib ``Algorithm``.

MAMT and its modes MAMD and MAAC run the shared off-policy loop of
:class:`rllib_mamt.joint_off_policy.JointOffPolicyAlgorithm`; they differ in
their learner (:mod:`rllib_mamt.algorithms.mamt.mamt_learner`) and config.
"""

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.utils.annotations import override

from rllib_mamt.algorithms.mamt.mamt_config import MAMTConfig
from rllib_mamt.joint_off_policy import JointOffPolicyAlgorithm


class MAMT(JointOffPolicyAlgorithm):
    """Multi-Agent Mirror descent policy optimisation with Trust-region decomposition."""

    @classmethod
    @override(Algorithm)
    def get_default_config(cls) -> MAMTConfig:
        return MAMTConfig(cls)


class MAMD(MAMT):
    """MAMD (Algorithm 3): MAMT with the trust region split equally, delta_i = delta/n."""

    @classmethod
    @override(Algorithm)
    def get_default_config(cls) -> MAMTConfig:
        return MAMTConfig(cls).training(trust_region_mode="equal")


class MAAC(MAMT):
    """MAAC (Iqbal & Sha, 2019): the same critic and actors with no trust region."""

    @classmethod
    @override(Algorithm)
    def get_default_config(cls) -> MAMTConfig:
        return MAMTConfig(cls).training(trust_region_mode="none")

"""MAMT (the paper's Algorithm 2) and its modes MAMD, MAAC and the Table 10
ablations: config, algorithm, learner (critic Eq. 9, mirror-descent actors
Eq. 10, trust-region decomposition Eq. 5-8) and its central module."""

from rllib_mamt.algorithms.mamt.mamt import MAAC, MAMD, MAMT
from rllib_mamt.algorithms.mamt.mamt_config import MAMTConfig

__all__ = ["MAMT", "MAMD", "MAAC", "MAMTConfig"]

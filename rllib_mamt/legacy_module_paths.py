"""Module paths of releases before the ``rllib_mamt.algorithms.<name>`` layout.

RLlib checkpoints pickle classes and functions by module path (the algorithm,
its config, the learner, the RLModules, the policy-mapping function). MAMT's
modules used to live at the top of the package; registering the new modules
under their old names lets ``Algorithm.from_checkpoint`` restore checkpoints
written before the move. New code imports the new paths.
"""

import importlib
import sys

LEGACY_MODULE_PATHS = {
    "rllib_mamt.mamt": "rllib_mamt.algorithms.mamt.mamt",
    "rllib_mamt.mamt_config": "rllib_mamt.algorithms.mamt.mamt_config",
    "rllib_mamt.mamt_learner": "rllib_mamt.algorithms.mamt.mamt_learner",
    "rllib_mamt.modules.central": "rllib_mamt.algorithms.mamt.central_module",
    "rllib_mamt.modules.trd_net": "rllib_mamt.algorithms.mamt.trd_net",
    "rllib_mamt.modules.opponent_models": "rllib_mamt.algorithms.mamt.opponent_models",
}


def register_legacy_module_paths() -> None:
    """Makes every old module path import as its new module (idempotent)."""
    for old, new in LEGACY_MODULE_PATHS.items():
        if old not in sys.modules:
            sys.modules[old] = importlib.import_module(new)

"""Module paths of releases before the ``rllib_mamt.algorithms.<name>`` layout.

RLlib checkpoints pickle classes and functions by module path (the algorithm,
its config, the learner, the RLModules, the policy-mapping function). MAMT's
modules used to live at the top of the package; registering a stand-in under
each old name, which finds every name in the modules it moved to, lets
``Algorithm.from_checkpoint`` restore checkpoints written before the move. New
code imports the new paths.
"""

import importlib
import sys
import types
from typing import Sequence

LEGACY_MODULE_PATHS = {
    "rllib_mamt.mamt": ("rllib_mamt.algorithms.mamt.mamt",),
    "rllib_mamt.mamt_config": ("rllib_mamt.algorithms.mamt.mamt_config",
                               "rllib_mamt.central_module_spec"),
    "rllib_mamt.mamt_learner": ("rllib_mamt.algorithms.mamt.mamt_learner",),
    "rllib_mamt.modules.central": ("rllib_mamt.algorithms.mamt.central_module",
                                   "rllib_mamt.central_module_spec"),
    "rllib_mamt.modules.trd_net": ("rllib_mamt.algorithms.mamt.trd_net",),
    "rllib_mamt.modules.opponent_models": ("rllib_mamt.algorithms.mamt.opponent_models",),
}
"""Old module path -> the modules its names moved to, searched in order."""


class LegacyModule(types.ModuleType):
    """Stands in for a removed module: a name is looked up in the modules it
    moved to."""

    def __init__(self, name: str, sources: Sequence[str]):
        super().__init__(name, f"Moved to {', '.join(sources)}.")
        self._sources = tuple(sources)

    def __getattr__(self, attribute: str):
        for source in self._sources:
            module = importlib.import_module(source)
            if hasattr(module, attribute):
                return getattr(module, attribute)
        raise AttributeError(
            f"module {self.__name__!r} (moved to {', '.join(self._sources)}) has no "
            f"attribute {attribute!r}"
        )


def register_legacy_module_paths() -> None:
    """Makes every old module path importable as its stand-in (idempotent)."""
    for old, sources in LEGACY_MODULE_PATHS.items():
        sys.modules.setdefault(old, LegacyModule(old, sources))

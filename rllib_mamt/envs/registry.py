"""Registration of the paper's environments with RLlib / Tune by name.

Each name maps to a factory taking the ``env_config`` dict and returning a
PettingZoo ParallelEnv; RLlib receives it wrapped in
:class:`~rllib_mamt.envs.pettingzoo_adapter.PettingZooMultiAgentEnv`.
"""

from functools import partial
from typing import Callable, Dict

from ray.tune.registry import register_env

from rllib_mamt.envs.pettingzoo_adapter import PettingZooMultiAgentEnv
from rllib_mamt.envs.rover_tower import make_rover_tower
from rllib_mamt.envs.sisl import make_multiwalker, make_pursuit
from rllib_mamt.envs.spread import make_spread
from rllib_mamt.envs.spread3 import make_spread3

ENV_FACTORIES: Dict[str, Callable] = {
    "spread": make_spread,
    "spread3_sep": partial(make_spread3, "sep"),
    "spread3_mix": partial(make_spread3, "mix"),
    "spread3_ful": partial(make_spread3, "ful"),
    "rover_tower": make_rover_tower,
    "pursuit": make_pursuit,
    "multiwalker": make_multiwalker,
}


def make_rllib_env(name: str, env_config=None) -> PettingZooMultiAgentEnv:
    """Builds the registered environment ``name`` as an RLlib MultiAgentEnv."""
    if name not in ENV_FACTORIES:
        raise ValueError(
            f"Unknown environment {name!r}; registered: {sorted(ENV_FACTORIES)}."
        )
    return PettingZooMultiAgentEnv(ENV_FACTORIES[name](env_config))


def register_environments() -> None:
    """Registers every environment of :data:`ENV_FACTORIES` with Tune."""
    for name in ENV_FACTORIES:
        register_env(name, lambda env_config, _name=name: make_rllib_env(_name, env_config))

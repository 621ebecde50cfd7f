"""The learner-only central module shared by every algorithm of the package.

Each algorithm gives every agent its own actor RLModule (id = agent id) and
puts everything else it trains (critics, targets, models) into one
learner-only module with id ``CENTRAL_MODULE_ID``, whose spaces are Dicts of
every actor's. The id keeps the value it had when only MAMT existed, so older
checkpoints restore.
"""

import gymnasium as gym

from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

CENTRAL_MODULE_ID = "mamt_central"


def map_agent_to_own_module(agent_id, episode=None, **kwargs):
    """Policy mapping of every algorithm here: each agent has its own decentralized actor."""
    return agent_id


def add_central_module(spec: MultiRLModuleSpec, module_class, model_config: dict
                       ) -> MultiRLModuleSpec:
    """Adds the learner-only central module (``CENTRAL_MODULE_ID``) to ``spec``:
    its observation and action spaces are Dicts of every actor's, and its
    ``model_config`` is ``model_config`` plus the sorted ``agent_ids``."""
    agents = [m for m in sorted(spec.rl_module_specs) if m != CENTRAL_MODULE_ID]
    actor_specs = spec.rl_module_specs
    spec.add_modules(
        {
            CENTRAL_MODULE_ID: RLModuleSpec(
                module_class=module_class,
                learner_only=True,
                observation_space=gym.spaces.Dict(
                    {a: actor_specs[a].observation_space for a in agents}
                ),
                action_space=gym.spaces.Dict({a: actor_specs[a].action_space for a in agents}),
                model_config={"agent_ids": agents, **model_config},
            )
        },
        override=True,
    )
    return spec

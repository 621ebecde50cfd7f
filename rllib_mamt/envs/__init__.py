"""The paper's environments, registered with RLlib by name (see ``registry``).

To use your own PettingZoo ParallelEnv with MAMT, register it wrapped in
:class:`PettingZooMultiAgentEnv` (agents in sorted order)::

    from ray.tune.registry import register_env
    from rllib_mamt.envs import PettingZooMultiAgentEnv
    register_env("my_env", lambda cfg: PettingZooMultiAgentEnv(MyParallelEnv(**cfg)))
"""

from rllib_mamt.envs.pettingzoo_adapter import PettingZooMultiAgentEnv

__all__ = ["PettingZooMultiAgentEnv"]

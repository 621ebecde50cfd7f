"""A checkpoint's actors played in this process: each agent's return per episode.

Only the actor modules are loaded from the checkpoint (no EnvRunners, learners
or replay buffer), and the env is built in this process from the trained
config, so evaluating never waits for cluster resources. ``rllib evaluate``
and the paper-budget runs' ``checkpoint_eval`` (``benchmarks/run_summary.py``)
use it.
"""

import os
import pickle
from typing import Dict, List


def checkpoint_config(checkpoint: str):
    """The AlgorithmConfig a checkpoint was trained with (without loading its state)."""
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

    with open(os.path.join(checkpoint, "class_and_ctor_args.pkl"), "rb") as handle:
        saved = pickle.load(handle)
    args, _ = saved["ctor_args_and_kwargs"]
    config = args[0]
    return AlgorithmConfig.from_state(config) if isinstance(config, dict) else config


def agent_episode_returns(checkpoint: str, episodes: int, seed: int,
                          explore: bool = False) -> List[Dict[str, float]]:
    """Each agent's return in ``episodes`` episodes of the restored actors.

    Args:
        checkpoint: An RLlib (new API stack) checkpoint directory.
        episodes: Episodes to play; episode ``e`` resets the env with seed
            ``seed + e``.
        seed: Seed of the env resets and, with ``explore``, of the action draws.
        explore: False: every agent takes its most probable action (the
            deterministic evaluation of Table 10). True: actions are drawn
            from the policies, as in training (the paper's training return).

    Returns:
        One ``{agent: return}`` per episode; an agent that leaves early keeps
        the rewards it got.

    Raises:
        FileNotFoundError: ``checkpoint`` holds no actor modules.
    """
    import numpy as np
    import torch
    from ray.rllib.algorithms.algorithm import Algorithm
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.rl_module.rl_module import RLModule
    from ray.rllib.env.env_context import EnvContext

    config = checkpoint_config(checkpoint)
    module_root = os.path.join(checkpoint, "learner_group", "learner", "rl_module")
    if not os.path.isdir(module_root):
        raise FileNotFoundError(
            f"{checkpoint} has no learner_group/learner/rl_module (not a new-API-stack checkpoint)")
    _, creator = Algorithm._get_env_id_and_creator(config.env, config)
    env = creator(EnvContext(config.env_config, worker_index=0))
    generator = torch.Generator().manual_seed(seed)
    modules = {}
    try:
        for agent in env.possible_agents:
            module_id = config.policy_mapping_fn(agent, None)
            if module_id not in modules:
                modules[module_id] = RLModule.from_checkpoint(os.path.join(module_root, module_id))
        returns = []
        for episode in range(episodes):
            observations, _ = env.reset(seed=seed + episode)
            totals = {agent: 0.0 for agent in env.possible_agents}
            done = False
            while not done:
                actions = {}
                for agent, observation in observations.items():
                    batch = {Columns.OBS: torch.as_tensor(np.asarray(observation)[None])}
                    with torch.no_grad():
                        module = modules[config.policy_mapping_fn(agent, None)]
                        logits = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
                    if explore:
                        probabilities = torch.softmax(logits.double(), dim=-1)
                        actions[agent] = int(torch.multinomial(probabilities, 1, generator=generator)[0, 0])
                    else:
                        actions[agent] = int(torch.argmax(logits, dim=-1)[0])
                observations, rewards, terminateds, truncateds, _ = env.step(actions)
                for agent, reward in rewards.items():
                    totals[agent] += float(reward)
                done = terminateds["__all__"] or truncateds["__all__"]
            returns.append(totals)
        return returns
    finally:
        env.close()


def mean_returns(agent_returns: List[Dict[str, float]]) -> Dict:
    """``{"return_mean": mean over episodes of the sum over agents,
    "agent_return_mean": {agent: mean over episodes}}`` of
    :func:`agent_episode_returns`' per-episode dicts."""
    episodes = len(agent_returns)
    agents = sorted({agent for episode in agent_returns for agent in episode})
    per_agent = {agent: sum(episode.get(agent, 0.0) for episode in agent_returns) / episodes
                 for agent in agents}
    return {"return_mean": sum(per_agent.values()), "agent_return_mean": per_agent}

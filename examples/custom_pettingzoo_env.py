"""Use MAMT from another project on your own PettingZoo environment.

    python examples/custom_pettingzoo_env.py [--iterations 15]

Defines a small cooperative task as a PettingZoo ParallelEnv, registers it
for RLlib, trains MAMT (learned trust regions) on it and prints the learned
trust regions delta_i and coordination coefficients C_ij. In "relay", agents
a and b are rewarded for choosing the same action, while agent c is rewarded
on its own. Note that Eq. 5 measures influence under the *current* policies:
once they are near-deterministic, marginalising j's action changes little and
C flattens towards uniform.
"""

import argparse

import gymnasium as gym
import numpy as np
import ray
from pettingzoo.utils.env import ParallelEnv
from ray.tune.registry import register_env

from rllib_mamt import MAMTConfig
from rllib_mamt.envs import PettingZooMultiAgentEnv


class RelayEnv(ParallelEnv):
    """Three agents, 4 actions each, 10 steps. Each observes a random cue (one-hot).

    a and b get +1 each when a's action equals b's cue-shifted choice (a == b);
    c gets +1 when its action matches its own cue.
    """

    metadata = {"name": "relay_v0", "render_modes": []}

    def __init__(self, max_cycles=10):
        self.possible_agents = ["a", "b", "c"]
        self.max_cycles = max_cycles
        self._rng = np.random.default_rng()

    def observation_space(self, agent):
        return gym.spaces.Box(0.0, 1.0, (4,), np.float32)

    def action_space(self, agent):
        return gym.spaces.Discrete(4)

    def _observe(self):
        self._cues = {agent: int(self._rng.integers(4)) for agent in self.agents}
        return {agent: np.eye(4, dtype=np.float32)[cue] for agent, cue in self._cues.items()}

    def reset(self, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.agents = list(self.possible_agents)
        self._t = 0
        return self._observe(), {agent: {} for agent in self.agents}

    def step(self, actions):
        self._t += 1
        together = float(actions["a"] == actions["b"])
        rewards = {"a": together, "b": together, "c": float(actions["c"] == self._cues["c"])}
        done = self._t >= self.max_cycles
        observations = self._observe()
        terminations = {agent: False for agent in self.agents}
        truncations = {agent: done for agent in self.agents}
        infos = {agent: {} for agent in self.agents}
        if done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=15)
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    register_env("relay", lambda env_config: PettingZooMultiAgentEnv(RelayEnv(**env_config)))
    config = (
        MAMTConfig()
        .environment("relay", env_config={"max_cycles": 10})
        .env_runners(num_env_runners=0)
        .training(
            trust_region_mode="learned",
            train_batch_size_per_learner=256,
            env_steps_per_update=50,
            coordination_threshold=0.2,
        )
        .debugging(seed=0)
    )
    algo = config.build_algo()
    for _ in range(args.iterations):
        result = algo.train()
        print(f"iteration {result['training_iteration']:>3}: "
              f"return {result['env_runners']['episode_return_mean']:.2f}")
    learners = result["learners"]
    print("trust regions delta_i:",
          {a: round(float(learners[a]["trust_region_delta"]), 3) for a in "abc"})
    print("coordination coefficients C_ij (row i, column j), mean over the last batch:")
    for agent in "abc":
        row = learners[agent]["coordination"]
        print(f"  {agent}:", {o: round(float(row[o]), 3) for o in sorted(row)})
    algo.stop()
    ray.shutdown()


if __name__ == "__main__":
    main()

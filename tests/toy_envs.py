"""Small PettingZoo ParallelEnvs used only by the tests."""

import gymnasium as gym
import numpy as np
from pettingzoo.utils.env import ParallelEnv

from rllib_mamt.joint_env_runner import episode_seed

#: The reset seed of sub-env 1's first episode on a JointEnvRunner seeded 0.
FIRST_EPISODE_OF_ENV_1 = episode_seed(0, 1, 0)


class HeterogeneousMatchEnv(ParallelEnv):
    """Two agents with different observation and action sizes.

    'scout' sees 3 floats and has 3 actions; 'worker' sees 5 floats and has 4
    actions. Both are rewarded 1 when worker's action modulo 3 equals scout's.
    """

    metadata = {"name": "heterogeneous_match_v0", "render_modes": []}

    def __init__(self, max_cycles=5):
        self.possible_agents = ["scout", "worker"]
        self.max_cycles = max_cycles
        self._spaces = {
            "scout": (gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(3)),
            "worker": (gym.spaces.Box(-1, 1, (5,), np.float32), gym.spaces.Discrete(4)),
        }
        self._rng = np.random.default_rng()

    def observation_space(self, agent):
        return self._spaces[agent][0]

    def action_space(self, agent):
        return self._spaces[agent][1]

    def _observe(self):
        return {a: self._rng.uniform(-1, 1, self._spaces[a][0].shape).astype(np.float32)
                for a in self.agents}

    def reset(self, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.agents = list(self.possible_agents)
        self._t = 0
        return self._observe(), {a: {} for a in self.agents}

    def step(self, actions):
        self._t += 1
        reward = float(actions["worker"] % 3 == actions["scout"])
        observations = self._observe()
        done = self._t >= self.max_cycles
        result = (
            observations,
            {a: reward for a in self.agents},
            {a: False for a in self.agents},
            {a: done for a in self.agents},
            {a: {} for a in self.agents},
        )
        if done:
            self.agents = []
        return result


class TurnTakingEnv(HeterogeneousMatchEnv):
    """Like HeterogeneousMatchEnv, but 'worker' only observes (acts) every other step."""

    def _observe(self):
        observations = super()._observe()
        if self._t % 2 == 1:
            observations.pop("worker", None)
        return observations

    def step(self, actions):
        actions = {"scout": actions["scout"], "worker": actions.get("worker", 0)}
        observations, rewards, terminations, truncations, infos = super().step(actions)
        return observations, rewards, terminations, truncations, infos


class LateDropoutEnv(HeterogeneousMatchEnv):
    """Like HeterogeneousMatchEnv, but 'worker' stops observing from step 3 on,
    which a one-step probe at build time cannot see."""

    def _observe(self):
        observations = super()._observe()
        if self._t >= 3:
            observations.pop("worker", None)
        return observations

    def step(self, actions):
        actions = {"scout": actions["scout"], "worker": actions.get("worker", 0)}
        return super().step(actions)


class MixedEndEnv(HeterogeneousMatchEnv):
    """Like HeterogeneousMatchEnv, but on the last step 'scout' ends as
    ``scout_end`` ('terminated' or 'truncated') and 'worker' as ``worker_end``."""

    def __init__(self, max_cycles=5, scout_end="terminated", worker_end="truncated"):
        super().__init__(max_cycles)
        self._ends = {"scout": scout_end, "worker": worker_end}

    def step(self, actions):
        observations, rewards, _, truncations, infos = super().step(actions)
        done = any(truncations.values())
        terminations = {a: done and self._ends[a] == "terminated" for a in rewards}
        truncations = {a: done and self._ends[a] == "truncated" for a in rewards}
        return observations, rewards, terminations, truncations, infos


class BadValueEnv(HeterogeneousMatchEnv):
    """Like HeterogeneousMatchEnv, but once reset with seed ``bad_seed`` it puts
    ``value`` into 'worker''s observation (``where='obs'``) or reward
    (``where='reward'``) at step ``bad_step`` (0 = the reset observation).
    The default seed is that of sub-env 1's first episode on a runner seeded 0."""

    def __init__(self, value, where="obs", bad_step=3, bad_seed=FIRST_EPISODE_OF_ENV_1,
                 max_cycles=5):
        super().__init__(max_cycles)
        self._value, self._where, self._bad_step = value, where, bad_step
        self._bad_seed = bad_seed
        self._bad = False

    def reset(self, seed=None, options=None):
        self._bad = seed == self._bad_seed
        observations, infos = super().reset(seed, options)
        return self._spoil(observations, None)[0], infos

    def _spoil(self, observations, rewards):
        if self._bad and self._t == self._bad_step:
            if self._where == "obs":
                observations["worker"] = observations["worker"].copy()
                observations["worker"][1] = self._value
            else:
                rewards["worker"] = self._value
        return observations, rewards

    def step(self, actions):
        observations, rewards, terminations, truncations, infos = super().step(actions)
        observations, rewards = self._spoil(observations, rewards)
        return observations, rewards, terminations, truncations, infos


class StructuredObservationEnv(HeterogeneousMatchEnv):
    """Like HeterogeneousMatchEnv, but 'scout' observes a Dict (a Box and a
    Discrete flag) and 'worker' a Tuple (a Box and a MultiBinary)."""

    def __init__(self, max_cycles=5):
        super().__init__(max_cycles)
        self._spaces = {
            "scout": (
                gym.spaces.Dict({
                    "position": gym.spaces.Box(-1, 1, (2,), np.float32),
                    "flag": gym.spaces.Discrete(3),
                }),
                gym.spaces.Discrete(3),
            ),
            "worker": (
                gym.spaces.Tuple((gym.spaces.Box(-1, 1, (4,), np.float32),
                                  gym.spaces.MultiBinary(2))),
                gym.spaces.Discrete(4),
            ),
        }

    def _observe(self):
        flag = int(self._rng.integers(3))
        return {
            "scout": {"position": self._rng.uniform(-1, 1, 2).astype(np.float32),
                      "flag": flag},
            "worker": (self._rng.uniform(-1, 1, 4).astype(np.float32),
                       np.array([flag % 2, 1], np.int8)),
        }


class FailingStepEnv(HeterogeneousMatchEnv):
    """Like HeterogeneousMatchEnv, but once reset with seed ``bad_seed`` (by
    default sub-env 1's first episode on a runner seeded 0) its step
    ``fail_step`` raises; until then 'worker''s first observation entry is the
    marker 7.0, so rows of the failed episode can be recognised."""

    MARKER = 7.0

    def __init__(self, fail_step=3, bad_seed=FIRST_EPISODE_OF_ENV_1, max_cycles=5):
        super().__init__(max_cycles)
        self._fail_step, self._bad_seed = fail_step, bad_seed
        self._doomed = False

    def _observe(self):
        observations = super()._observe()
        if self._doomed:
            observations["worker"][0] = self.MARKER
        return observations

    def reset(self, seed=None, options=None):
        self._doomed = seed == self._bad_seed
        return super().reset(seed, options)

    def step(self, actions):
        if self._doomed and self._t + 1 == self._fail_step:
            raise RuntimeError(f"simulated crash at step {self._fail_step}")
        return super().step(actions)


class EarlyExitEnv(ParallelEnv):
    """Three agents; 'leaver' terminates at step ``exit_step`` and leaves, the
    others go on until the time limit ``max_cycles`` (truncation).

    Each agent sees 4 floats (step / max_cycles, then noise) and has 3 actions;
    it is rewarded 1 when its action equals the step number modulo 3.
    """

    metadata = {"name": "early_exit_v0", "render_modes": []}

    def __init__(self, exit_step=3, max_cycles=10):
        self.possible_agents = ["leaver", "stayer_a", "stayer_b"]
        self.exit_step, self.max_cycles = exit_step, max_cycles
        self._rng = np.random.default_rng()

    def observation_space(self, agent):
        return gym.spaces.Box(-1, 1, (4,), np.float32)

    def action_space(self, agent):
        return gym.spaces.Discrete(3)

    def _observe(self, agents):
        return {
            a: np.concatenate([[self._t / self.max_cycles],
                               self._rng.uniform(-1, 1, 3)]).astype(np.float32)
            for a in agents
        }

    def reset(self, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.agents = list(self.possible_agents)
        self._t = 0
        return self._observe(self.agents), {a: {} for a in self.agents}

    def step(self, actions):
        unknown = set(actions) - set(self.agents)
        if unknown:
            raise ValueError(f"actions for agents no longer in the episode: {unknown}")
        acting = list(self.agents)
        self._t += 1
        rewards = {a: float(actions[a] == self._t % 3) for a in acting}
        observations = self._observe(acting)
        timeout = self._t >= self.max_cycles
        terminations = {a: a == "leaver" and self._t == self.exit_step for a in acting}
        truncations = {a: timeout and not terminations[a] for a in acting}
        self.agents = [a for a in acting if not (terminations[a] or truncations[a])]
        return observations, rewards, terminations, truncations, {a: {} for a in acting}


class RandomLengthEnv(HeterogeneousMatchEnv):
    """Episodes last 2 or 12 steps, drawn at reset from the env's own RNG; both
    agents get reward 1 per step, so an episode's return is 2 x its length."""

    LENGTHS = (2, 12)

    def reset(self, seed=None, options=None):
        observations, infos = super().reset(seed=seed, options=options)
        self.max_cycles = int(self._rng.choice(self.LENGTHS))
        return observations, infos

    def step(self, actions):
        observations, rewards, terminateds, truncateds, infos = super().step(actions)
        return observations, {a: 1.0 for a in rewards}, terminateds, truncateds, infos


class BoxActionEnv(HeterogeneousMatchEnv):
    """HeterogeneousMatchEnv with a continuous action for 'worker' (and, with
    ``unbounded``, an unbounded one for 'scout' too)."""

    def __init__(self, unbounded=False):
        super().__init__()
        self._spaces["worker"] = (self._spaces["worker"][0], gym.spaces.Box(-1, 1, (2,)))
        if unbounded:
            self._spaces["scout"] = (self._spaces["scout"][0],
                                     gym.spaces.Box(-np.inf, np.inf, (2,)))

    def step(self, actions):
        as_index = {a: int(np.asarray(v).reshape(-1)[0] > 0) if np.ndim(v) else v
                    for a, v in actions.items()}
        return super().step(as_index)

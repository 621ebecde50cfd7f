"""MAPPO's sampling with its actors stacked vs evaluated one agent at a time,
next to MAAC's, as ratios measured side by side in one process.

    python benchmarks/stacked_sampling.py [--envs spread rover_tower] \
        [--rounds 5] [--seconds 4] [--sample-chunk 1000]

Three samplers per env, built like ``algorithm_costs``'s (paper defaults,
one local JointEnvRunner with one env, one torch thread, learning disabled)
and interleaved round by round so that machine noise hits them alike:

* ``MAAC``: the reference (its actors are stacked);
* ``MAPPO``: MAPPO's sampling path with its LayerNorm actors stacked
  (:class:`rllib_mamt.stacked_actors.StackedActors`'s batched groups);
* ``MAPPO per-agent``: the same with stacking switched off for its actors, so
  the runner makes one RLModule forward per agent per step (the path of
  actors that do not declare a stackable forward, MAPPO's before they did).

Prints env steps/s medians only as ratios (to MAAC, and stacked / per-agent)
with each ratio's range over rounds; writes every round's rates as JSON.
"""

import argparse
import json
import os
import statistics
import sys
from unittest import mock

import ray
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from algorithm_costs import build, sampler  # noqa: E402
from sampling_throughput import median_rate  # noqa: E402

from rllib_mamt import stacked_actors  # noqa: E402

PER_AGENT = "MAPPO per-agent"
SAMPLERS = ("MAAC", "MAPPO", PER_AGENT)


def build_sampler(label, env, chunk):
    """(algorithm, sampling call) for one of :data:`SAMPLERS`, warmed up; the
    per-agent variant's StackedActors are built with stacking refused."""
    name = "MAPPO" if label == PER_AGENT else label
    algo = build(name, env, {}, envs_per_runner=1, chunk=chunk)
    call = sampler(name, algo)
    if label == PER_AGENT:
        with mock.patch.object(stacked_actors, "has_stackable_forward", lambda actor: False):
            call()
        assert not any(group.stacked for group in algo.env_runner._actors.groups)
    else:
        call()
        assert all(group.stacked for group in algo.env_runner._actors.groups)
    return algo, call


def measure(env, args):
    built = {label: build_sampler(label, env, args.sample_chunk) for label in SAMPLERS}
    rates = {label: [] for label in SAMPLERS}
    try:
        for _ in range(args.rounds):
            for label, (_, call) in built.items():
                rates[label].append(median_rate(call, args.seconds, 1))
    finally:
        for algo, _ in built.values():
            algo.stop()
    return rates


def ratio_summary(values, references):
    """Median of values / median of references, and the per-round range."""
    per_round = [v / r for v, r in zip(values, references)]
    return (statistics.median(values) / statistics.median(references),
            min(per_round), max(per_round))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=["spread", "rover_tower"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--sample-chunk", type=int, default=1000)
    parser.add_argument("--out", default="benchmarks/results/stacked_sampling.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    results = {}
    try:
        for env in args.envs:
            rates = measure(env, args)
            results[env] = rates
            print(f"{env}:")
            for label, reference in (("MAPPO", "MAAC"), (PER_AGENT, "MAAC"),
                                     ("MAPPO", PER_AGENT)):
                median, low, high = ratio_summary(rates[label], rates[reference])
                print(f"  {label} / {reference}: {median:.2f} "
                      f"(rounds {low:.2f}-{high:.2f})")
    finally:
        ray.shutdown()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump({"args": vars(args), "env_steps_per_s": results}, handle, indent=1)


if __name__ == "__main__":
    main()

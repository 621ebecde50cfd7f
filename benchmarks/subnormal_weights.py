"""Learner cost once the 2-agent critic's dead attention weights are subnormal.

    python benchmarks/subnormal_weights.py --checkpoint DIR [--repeats 15] [--clock cpu]

With two agents the critic's key and query projections get no gradient from
the values, and weight decay shrinks them into subnormal floats
(``rllib_mamt/subnormal_floats.py``). ``DIR`` is a checkpoint of a Spread
run trained without the flush (code before ``subnormal_floats``) far enough
for that to happen; BENCHMARKS.md names the one measured (16,287 of 16,384
key weights subnormal). Two algorithms are restored from it, weights,
optimiser state and replay buffer alike:

- "not flushed": the learner's flush turned off, as before
  ``subnormal_floats``;
- "flushed": the learner as it is now (its first update flushes the
  subnormal weights to 0, as in a resumed run).

Rounds of ``num_updates_per_round`` updates are timed, interleaving the two
so that machine noise hits both alike. Prints the median seconds per update,
the ratio to "flushed" and the subnormal weights each learner's critic has
left, and writes JSON. Before the updates it also times the critic's key
projection alone on the restored weights, with flushing off and on. A checkpoint is not committed: it comes from a run of
``benchmarks/paper_budget.py`` stopped at about 4,000 episodes.
"""

import argparse
import contextlib
import json
import os
import statistics
import sys

import ray
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rllib_mamt.joint_learner as joint_learner  # noqa: E402
from rllib_mamt.subnormal_floats import subnormal_count  # noqa: E402
from learner_update import CLOCKS, interleaved_samples, machine  # noqa: E402


def subnormal_critic_weights(algo) -> int:
    """How many of the learner's critic weights are subnormal."""
    critic = algo.learner_group._learner._central().critic
    return sum(subnormal_count(parameter) for parameter in critic.parameters())


def key_projection_matmul_seconds(algo, repeats, clock, flush) -> float:
    """Median seconds of the critic's key projection on a (2048, 128) input
    (batch 1024 x 2 agents), with flushing on or off, on the restored weights."""
    weight = algo.learner_group._learner._central().critic.key_projection.weight.detach().clone()
    inputs = torch.randn(2048, weight.shape[1])
    torch.set_flush_denormal(flush)
    times = []
    for _ in range(repeats):
        start = clock()
        torch.nn.functional.linear(inputs, weight)
        times.append(clock() - start)
    return statistics.median(times)


@contextlib.contextmanager
def flush_turned_off():
    """The learner as before ``subnormal_floats``: no flush in build or update."""
    flush = joint_learner.flush_subnormal_floats
    joint_learner.flush_subnormal_floats = lambda: torch.set_flush_denormal(False)
    torch.set_flush_denormal(False)
    try:
        yield
    finally:
        joint_learner.flush_subnormal_floats = flush


def update_without_flush(algo):
    def call():
        with flush_turned_off():
            algo.update_from_buffer()
    return call


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True,
                        help="a checkpoint of a 2-agent run trained without the flush")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--clock", choices=list(CLOCKS), default="cpu",
                        help="this process's CPU time (default: the machine is shared), or wall time")
    parser.add_argument("--out", default="benchmarks/results/subnormal_weights.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    import rllib_mamt  # noqa: F401  (registers algorithms and environments)
    from ray.rllib.algorithms.algorithm import Algorithm

    with flush_turned_off():
        algos = {name: Algorithm.from_checkpoint(os.path.abspath(args.checkpoint))
                 for name in ("not flushed", "flushed")}
    subnormal_at_start = {name: subnormal_critic_weights(algo) for name, algo in algos.items()}
    matmul = {name: key_projection_matmul_seconds(algos["not flushed"], 5 * args.repeats,
                                                  CLOCKS[args.clock], flush)
              for name, flush in (("not flushed", False), ("flushed", True))}
    calls = {
        "not flushed": (update_without_flush(algos["not flushed"]),
                        algos["not flushed"].config.num_updates_per_round),
        "flushed": (algos["flushed"].update_from_buffer,
                    algos["flushed"].config.num_updates_per_round),
    }
    samples = interleaved_samples(calls, args.repeats, clock=CLOCKS[args.clock])
    subnormal_at_end = {name: subnormal_critic_weights(algo) for name, algo in algos.items()}
    for algo in algos.values():
        algo.stop()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(f"\n{'learner':<12} {'s/update':>9} {'/flushed':>9} {'subnormal critic weights':>26}")
    for name, median in medians.items():
        print(f"{name:<12} {median:>9.4f} {median / medians['flushed']:>9.2f} "
              f"{subnormal_at_start[name]:>12} -> {subnormal_at_end[name]}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump({
            "machine": machine(),
            "command": "python benchmarks/subnormal_weights.py " + " ".join(sys.argv[1:]),
            "clock": args.clock, "repeats": args.repeats,
            "subnormal_critic_weights_at_start": subnormal_at_start,
            "subnormal_critic_weights_at_end": subnormal_at_end,
            "median_seconds_per_update": medians,
            "key_projection_matmul_seconds": matmul,
            "ratio_to_flushed": {name: value / medians["flushed"] for name, value in medians.items()},
        }, handle, indent=2)
    print(f"key projection matmul: {matmul['not flushed']:.5f} s not flushed, "
          f"{matmul['flushed']:.5f} s flushed ({matmul['not flushed'] / matmul['flushed']:.0f}x)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

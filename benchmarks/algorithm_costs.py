"""Sampling and learner cost of each algorithm next to MAAC and MAMT, as ratios
measured side by side in one process.

    python benchmarks/algorithm_costs.py [--envs spread rover_tower] \
        [--algorithms MAAC MAMT MADDPG MAPPO LOLA MAMT_PPO] [--rounds 5] [--seconds 4] \
        [--repeats 5]

For each env, every algorithm is built with its defaults (MAMTConfig: Table 3;
MADDPG: Table 5; MAPPO: Table 6; LOLA: Table 7, on 2-agent envs only;
MAMT_PPO: Table 6's PPO with Table 3's decomposition), one
local JointEnvRunner, one torch thread, and measured twice, the algorithms
interleaved round by round so that machine noise hits all of them alike:

1. sampling: env steps/s of the algorithm's own sampling path with learning
   disabled (its actors on the JointEnvRunner, plus what it does with the
   rows: the joint replay buffer for MAAC/MAMT/MADDPG/LOLA; trajectory layout
   and reward scaling for MAPPO and MAMT_PPO), ``--sample-chunk`` env steps per call, one
   window of ``--seconds`` per algorithm and round (``sampling_throughput``'s
   ``median_rate``);
2. learner: seconds per learner update on the algorithm's default batch, where
   an "update" is what the algorithm calls one: MAAC/MAMT/LOLA one minibatch
   of 1,024 rows; MADDPG one minibatch of 1,024 rows per agent; MAPPO and MAMT_PPO one
   iteration, ``num_epochs`` passes over its 4,096-row batch. Each is also
   converted to learner seconds per 1,000 env steps of training at the
   algorithm's default update schedule (off-policy: ``num_updates_per_round``
   updates every ``env_steps_per_update`` env steps; MAPPO, MAMT_PPO: one iteration per
   batch), which is the number that compares the algorithms' training cost.

The FLOPs of one update and the matmul roofline of this CPU
(``learner_update``'s helpers) give each update's compute-bound time.
Medians over rounds; ratios to MAAC (and MAMT) of the medians, and in the
JSON every round's value and the range of the ratio to MAAC measured within
each round. Prints a table; writes JSON.
"""

import argparse
import json
import os
import statistics
import sys

import ray
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from learner_update import MODES, flops_of, interleaved_samples, machine, matmul_roofline  # noqa: E402
from sampling_throughput import median_rate  # noqa: E402

from rllib_mamt import LOLAConfig, MADDPGConfig, MAMTConfig, MAMTPPOConfig, MAPPOConfig  # noqa: E402
from rllib_mamt.envs.registry import ENV_FACTORIES, make_rllib_env  # noqa: E402

ALGORITHMS = ("MAAC", "MAMD", "MAMT", "MADDPG", "MAPPO", "LOLA", "MAMT_PPO")
DEFAULT_ALGORITHMS = ("MAAC", "MAMT", "MADDPG", "MAPPO", "LOLA", "MAMT_PPO")
ON_POLICY_ALGORITHMS = ("MAPPO", "MAMT_PPO")
REFERENCES = ("MAAC", "MAMT")
TWO_AGENT_ALGORITHMS = {"LOLA": "LOLA runs on 2-agent envs only"}
BUFFER_CAPACITY = 200_000
LEARNER_FILL_STEPS = 2048


def default_config(name):
    """The algorithm's config with its paper defaults."""
    if name in MODES:
        return MAMTConfig().training(trust_region_mode=MODES[name])
    return {"MADDPG": MADDPGConfig, "MAPPO": MAPPOConfig, "LOLA": LOLAConfig,
            "MAMT_PPO": MAMTPPOConfig}[name]()


def is_on_policy(name) -> bool:
    return name in ON_POLICY_ALGORITHMS


def build(name, env, env_config, *, envs_per_runner, chunk, seed=0):
    """The algorithm on ``env`` with a local JointEnvRunner, one learner thread,
    learning disabled, sampling ``chunk`` env steps per sampling call."""
    if is_on_policy(name):
        training = {"train_batch_size_per_learner": chunk}
    else:
        training = {"env_steps_per_update": chunk, "replay_buffer_capacity": BUFFER_CAPACITY,
                    "num_steps_sampled_before_learning_starts": 10**12}
    config = (
        default_config(name)
        .environment(env, env_config=env_config)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=envs_per_runner)
        .training(learner_torch_threads=1, **training)
        .debugging(seed=seed)
    )
    return config.build_algo()


def sampler(name, algo):
    """A call that samples one chunk through the algorithm's path, returning
    the env steps it sampled."""
    if is_on_policy(name):
        return lambda: algo.sample_train_batch().env_steps()
    return algo.sample_into_buffer


def measure_sampling(names, env, env_config, args):
    algos = {name: build(name, env, env_config, envs_per_runner=args.envs_per_runner,
                         chunk=args.sample_chunk) for name in names}
    calls = {name: sampler(name, algo) for name, algo in algos.items()}
    for call in calls.values():
        call()  # warm-up
    rates = {name: [] for name in names}
    for _ in range(args.rounds):
        for name, call in calls.items():
            rates[name].append(median_rate(call, args.seconds, 1))
    for algo in algos.values():
        algo.stop()
    return rates


def paired_ratio_range(values, references):
    """(min, max) over rounds of value / reference measured in the same round:
    how much the ratio moved with the machine's load."""
    ratios = [value / reference for value, reference in zip(values, references)]
    return [min(ratios), max(ratios)]


class LearnerUnderTest:
    """One algorithm at its default batch: what one learner update is, how many
    it runs per 1,000 env steps of default training, and a call running
    ``units`` of them."""

    def __init__(self, name, env, env_config, envs_per_runner):
        defaults = default_config(name)
        self.name = name
        if is_on_policy(name):
            self.algo = build(name, env, env_config, envs_per_runner=envs_per_runner,
                              chunk=defaults.train_batch_size_per_learner)
            batch = self.algo.sample_train_batch()
            rows = batch.env_steps()
            minibatch = defaults.minibatch_size or rows
            self.call = lambda: self.algo.update_from_batch(batch)
            self.units = 1
            self.updates_per_1000_env_steps = 1000 / rows
            self.update_unit = (f"1 iteration: {defaults.num_epochs} epochs x "
                                f"{-(-rows // minibatch)} minibatch(es) over {rows} rows")
        else:
            self.algo = build(name, env, env_config, envs_per_runner=envs_per_runner,
                              chunk=LEARNER_FILL_STEPS)
            self.algo.sample_into_buffer()
            minibatches = self.algo.minibatches_per_update()
            self.call = self.algo.update_from_buffer
            self.units = defaults.num_updates_per_round
            self.updates_per_1000_env_steps = (
                1000 * defaults.num_updates_per_round / defaults.env_steps_per_update
            )
            self.update_unit = (f"{minibatches} minibatch(es) of "
                                f"{defaults.train_batch_size_per_learner} rows")

    def flops_per_update(self) -> float:
        return flops_of(self.call) / self.units


def measure_learners(names, env, env_config, args):
    learners = {name: LearnerUnderTest(name, env, env_config, args.envs_per_runner)
                for name in names}
    for learner in learners.values():
        learner.call()  # warm-up
    flops = {name: learner.flops_per_update() for name, learner in learners.items()}
    roofline = matmul_roofline()
    samples = interleaved_samples(
        {name: (learner.call, learner.units) for name, learner in learners.items()},
        args.repeats,
    )
    roofline = max(roofline, matmul_roofline())
    results = {}
    for name, learner in learners.items():
        seconds = statistics.median(samples[name])
        bound = flops[name] / (roofline * 1e9)
        results[name] = {
            "update_unit": learner.update_unit,
            "seconds_per_update_per_round": samples[name],
            "update_ratio_to_maac_per_round_range": paired_ratio_range(
                samples[name], samples["MAAC"]),
            "seconds_per_update": seconds,
            "updates_per_1000_env_steps": learner.updates_per_1000_env_steps,
            "learner_seconds_per_1000_env_steps": seconds * learner.updates_per_1000_env_steps,
            "gflop_per_update": flops[name] / 1e9,
            "time_over_compute_bound": seconds / bound,
        }
        learner.algo.stop()
    return results, roofline


def measure_env(env, env_config, names, args):
    agents = len(make_rllib_env(env, env_config).possible_agents)
    skipped = {name: reason for name, reason in TWO_AGENT_ALGORITHMS.items()
               if name in names and agents != 2}
    names = [name for name in names if name not in skipped]
    load_before = os.getloadavg()
    rates = measure_sampling(names, env, env_config, args)
    sampling = {name: statistics.median(values) for name, values in rates.items()}
    learner, roofline = measure_learners(names, env, env_config, args)
    algorithms = {}
    for name in names:
        row = {"sampling_env_steps_per_s": sampling[name],
               "sampling_ratio_to_maac": sampling[name] / sampling["MAAC"],
               "sampling_env_steps_per_s_per_round": rates[name],
               "sampling_ratio_to_maac_per_round_range": paired_ratio_range(
                   rates[name], rates["MAAC"]),
               **learner[name]}
        for reference in REFERENCES:
            per_1000 = learner[reference]["learner_seconds_per_1000_env_steps"]
            row[f"learner_per_env_step_ratio_to_{reference.lower()}"] = (
                row["learner_seconds_per_1000_env_steps"] / per_1000
            )
        row["update_ratio_to_maac"] = (
            row["seconds_per_update"] / learner["MAAC"]["seconds_per_update"]
        )
        algorithms[name] = row
    return {"env": env, "env_config": env_config, "agents": agents,
            "load_average_before": load_before, "load_average_after": os.getloadavg(),
            "roofline_gflops": roofline, "algorithms": algorithms, "skipped": skipped}


def print_tables(rows):
    print(f"{'env':<12} {'n':>2} {'algorithm':<7} {'env steps/s':>11} {'/MAAC':>6} "
          f"{'s/update':>9} {'/MAAC':>6} {'s/1k steps':>10} {'/MAAC':>6} {'/MAMT':>6} "
          f"{'GFLOP':>7} {'t/bound':>7}  update")
    for row in rows:
        for name, a in row["algorithms"].items():
            print(f"{row['env']:<12} {row['agents']:>2} {name:<7} "
                  f"{a['sampling_env_steps_per_s']:>11.0f} {a['sampling_ratio_to_maac']:>6.2f} "
                  f"{a['seconds_per_update']:>9.4f} {a['update_ratio_to_maac']:>6.2f} "
                  f"{a['learner_seconds_per_1000_env_steps']:>10.3f} "
                  f"{a['learner_per_env_step_ratio_to_maac']:>6.2f} "
                  f"{a['learner_per_env_step_ratio_to_mamt']:>6.2f} "
                  f"{a['gflop_per_update']:>7.2f} {a['time_over_compute_bound']:>7.1f}  "
                  f"{a['update_unit']}")
        for name, reason in row["skipped"].items():
            print(f"{row['env']:<12} {row['agents']:>2} {name:<7} skipped: {reason}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=["spread", "rover_tower"],
                        choices=sorted(ENV_FACTORIES))
    parser.add_argument("--algorithms", nargs="+", default=list(DEFAULT_ALGORITHMS),
                        choices=ALGORITHMS)
    parser.add_argument("--rounds", type=int, default=5,
                        help="interleaved sampling rounds (one window per algorithm)")
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="length of one sampling window")
    parser.add_argument("--sample-chunk", type=int, default=1000,
                        help="env steps per sampling call, the same for every algorithm")
    parser.add_argument("--repeats", type=int, default=5,
                        help="interleaved learner rounds")
    parser.add_argument("--envs-per-runner", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/algorithm_costs.json")
    args = parser.parse_args(argv)
    for option in ("rounds", "sample_chunk", "repeats", "envs_per_runner"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} {getattr(args, option)}: "
                         f"must be an int >= 1")
    if args.seconds <= 0:
        parser.error(f"--seconds {args.seconds}: must be > 0")
    missing = [name for name in REFERENCES if name not in args.algorithms]
    if missing:
        parser.error(f"--algorithms {' '.join(args.algorithms)}: must include "
                     f"{' and '.join(REFERENCES)} (the reference columns)")
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(1)
    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows = [measure_env(env, {}, args.algorithms, args) for env in args.envs]
    if started_ray:
        ray.shutdown()
    print_tables(rows)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump({
            "machine": machine(),
            "settings": {key: value for key, value in vars(args).items() if key != "out"},
            "rows": rows,
        }, handle, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

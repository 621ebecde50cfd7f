"""Learner cost: median seconds per update of MAAC, MAMD and MAMT on the same batches.

    python benchmarks/learner_update.py [--env spread --agents 2 3 8] [--repeats 15]
    python benchmarks/learner_update.py --env rover_tower
    python benchmarks/learner_update.py --env rover_tower --precisions float32 bfloat16

For each agent count, one algorithm per mode is built on the same env and its
buffer filled with the same random-policy transitions; then rounds of
``num_updates_per_round`` (4) updates with the paper's batch of 1024 are timed,
interleaving the modes so that machine noise hits all of them alike. Prints a
table (median seconds per update and ratio to MAAC) and writes JSON.

It also counts the floating-point operations of one update of each mode
(``torch.utils.flop_counter``, forward and backward matmuls/convolutions; the
element-wise work is not counted) and measures, in the same run and with the
same threads, the matmul throughput this CPU sustains on the learner's
shapes (the roofline): the compute-bound time of an update is its FLOPs over
that throughput, and ``time / compute-bound`` says how far the learner is
from it (issue 15's target for MAAC: <= 2).

``--precisions float32 bfloat16`` adds every mode with
``learner_precision="bfloat16"`` to the same interleaved rounds (rows
"MAAC bf16", ...); their compute bound uses the bf16 matmul roofline measured
the same way.

``--clock cpu`` times with ``time.process_time`` (CPU seconds of this
process) instead of wall time: on a machine shared with other jobs it is not
inflated by waiting for a core, so with ``--threads 1`` it still measures the
learner's own cost (with more threads it sums the threads' CPU time).
"""

import argparse
import json
import os
import platform
import statistics
import time

import ray
import torch

from rllib_mamt import MAMTConfig

MODES = {"MAAC": "none", "MAMD": "equal", "MAMT": "learned"}
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
PRECISION_SUFFIX = {"float32": "", "bfloat16": " bf16"}


def build(env, env_config, mode, seed, threads=None, precision="float32"):
    precision_setting = {} if precision == "float32" else {"learner_precision": precision}
    config = (
        MAMTConfig()
        .environment(env, env_config=env_config)
        .env_runners(num_env_runners=0)
        .training(
            trust_region_mode=mode,
            env_steps_per_update=2048,
            num_steps_sampled_before_learning_starts=10**9,
            learner_torch_threads=threads,
            **precision_setting,
        )
        .debugging(seed=seed)
    )
    algo = config.build_algo()
    algo.sample_into_buffer()
    return algo


ROOFLINE_SHAPES = ((8192, 256, 128), (8192, 128, 128), (1024, 256, 128), (5120, 256, 128))
"""(rows, inputs, outputs) of matmuls like the critic's and heads' at batch 1024."""


def matmul_roofline(repeats: int = 20, dtype=torch.float32, clock=time.perf_counter) -> float:
    """Best sustained GFLOP/s of ``dtype`` matmuls over ``ROOFLINE_SHAPES``
    (median of repeats)."""
    best = 0.0
    for rows, inputs, outputs in ROOFLINE_SHAPES:
        left = torch.randn(rows, inputs).to(dtype)
        right = torch.randn(inputs, outputs).to(dtype)
        torch.mm(left, right)
        times = []
        for _ in range(repeats):
            start = clock()
            torch.mm(left, right)
            times.append(clock() - start)
        best = max(best, 2 * rows * inputs * outputs / statistics.median(times) / 1e9)
    return best


def flops_of(call) -> float:
    """FLOPs (forward + backward matmuls/convolutions) of one ``call()``."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        call()
    return counter.get_total_flops()


def flops_per_update(algo) -> float:
    """FLOPs of one learner update (forward + backward), from one round."""
    return flops_of(algo.update_from_buffer) / algo.config.num_updates_per_round


def interleaved_samples(calls, repeats, clock=time.perf_counter):
    """Per name, ``repeats`` timings of ``call()`` in seconds of ``clock``
    divided by its ``units`` (``calls``: name -> (call, units)), interleaving
    the names round by round so that machine noise hits all of them alike."""
    samples = {name: [] for name in calls}
    for _ in range(repeats):
        for name, (call, units) in calls.items():
            start = clock()
            call()
            samples[name].append((clock() - start) / units)
    return samples


def measure(env, env_config, repeats, seed=0, threads=None, precisions=("float32",),
            clock=time.perf_counter):
    algos = {
        name + PRECISION_SUFFIX[precision]: build(env, env_config, mode, seed, threads, precision)
        for precision in precisions for name, mode in MODES.items()
    }
    dtype_of = {name: torch.bfloat16 if name.endswith(" bf16") else torch.float32
                for name in algos}
    for algo in algos.values():
        algo.update_from_buffer()  # warm-up
    flops = {name: flops_per_update(algo) for name, algo in algos.items()}
    rooflines = {dtype: matmul_roofline(dtype=dtype, clock=clock)
                 for dtype in set(dtype_of.values())}
    samples = interleaved_samples(
        {name: (algo.update_from_buffer, algo.config.num_updates_per_round)
         for name, algo in algos.items()},
        repeats, clock=clock,
    )
    agents = len(algos["MAAC"].config.agent_ids())
    for algo in algos.values():
        algo.stop()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    rooflines = {dtype: max(value, matmul_roofline(dtype=dtype, clock=clock))
                 for dtype, value in rooflines.items()}
    roofline = {name: rooflines[dtype_of[name]] for name in algos}
    compute_bound = {name: flops[name] / (roofline[name] * 1e9) for name in flops}
    return {
        "gflop_per_update": {name: flops[name] / 1e9 for name in flops},
        "roofline_gflops": roofline,
        "compute_bound_seconds": compute_bound,
        "time_over_compute_bound": {name: medians[name] / compute_bound[name] for name in flops},
        "env": env,
        "env_config": env_config,
        "agents": agents,
        "median_seconds_per_update": medians,
        "ratio_to_maac": {name: medians[name] / medians["MAAC"] for name in medians},
    }


def machine() -> dict:
    """CPUs, torch threads and the CPU model (from /proc/cpuinfo where there is one):
    the same code runs at different speeds on different CPU models."""
    processor = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as handle:
            models = [line.split(":", 1)[1].strip() for line in handle
                      if line.startswith("model name")]
        processor = models[0] if models else processor
    return {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "processor": processor}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="spread")
    parser.add_argument("--agents", type=int, nargs="*", default=[2, 3, 8],
                        help="n_agents values (envs with an n_agents key only)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", default="benchmarks/results/learner_update.json")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch intra-op threads of this process (issue 15 measures on 2)")
    parser.add_argument("--precisions", nargs="+", default=["float32"],
                        choices=list(PRECISION_SUFFIX),
                        help="learner_precision values measured side by side")
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall",
                        help="wall time, or this process's CPU time (a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    configs = [{"n_agents": n} for n in args.agents] if args.env == "spread" else [{}]
    rows = [measure(args.env, env_config, args.repeats, threads=args.threads,
                    precisions=args.precisions, clock=CLOCKS[args.clock])
            for env_config in configs]
    print(f"\n{'env':<12} {'n':>2} {'mode':<10} {'s/update':>9} {'/MAAC':>6} {'GFLOP':>7} "
          f"{'roofline GFLOP/s':>17} {'bound s':>8} {'time/bound':>11}")
    for row in rows:
        for m in row["median_seconds_per_update"]:
            print(f"{row['env']:<12} {row['agents']:>2} {m:<10} "
                  f"{row['median_seconds_per_update'][m]:>9.4f} {row['ratio_to_maac'][m]:>6.2f} "
                  f"{row['gflop_per_update'][m]:>7.2f} {row['roofline_gflops'][m]:>17.0f} "
                  f"{row['compute_bound_seconds'][m]:>8.4f} "
                  f"{row['time_over_compute_bound'][m]:>11.2f}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump({
            "machine": machine(),
            "batch_size": 1024,
            "clock": args.clock,
            "rows": rows,
        }, handle, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

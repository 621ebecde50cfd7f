"""Profile learner updates operator by operator with torch.profiler (one thread).

    python benchmarks/profile_learner_ops.py [--env rover_tower] [--modes MAAC MAMT] [--top 30]

Builds each mode as ``benchmarks/learner_update.py`` does (same env, same
random-policy buffer, batch 1024), runs one warm-up round, then profiles one
round of ``num_updates_per_round`` updates and prints the operators with the
most self CPU time, plus the total wall time per update.
"""

import argparse
import time

import ray
import torch
from torch.profiler import ProfilerActivity, profile

from learner_update import MODES, build


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="rover_tower")
    parser.add_argument("--modes", nargs="*", default=["MAAC", "MAMT"], choices=list(MODES))
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    for name in args.modes:
        algo = build(args.env, {}, MODES[name], seed=0)
        torch.set_num_threads(1)
        algo.update_from_buffer()  # warm-up
        updates = algo.config.num_updates_per_round
        start = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            algo.update_from_buffer()
        seconds = (time.perf_counter() - start) / updates
        print(f"\n=== {name}: {seconds:.4f} s per update (profiled, 1 thread) ===")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))
        algo.stop()


if __name__ == "__main__":
    main()

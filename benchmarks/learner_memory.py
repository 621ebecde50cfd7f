"""Learner update cost with and without keeping freed memory (rllib_mamt.learner_memory).

    python benchmarks/learner_memory.py [--env rover_tower] [--modes MAAC MAMT] [--rounds 3]

Each measurement is a fresh process (glibc's thresholds are per process and
adapt to its history), alternating "glibc default" (the learner's
``retain_freed_memory`` replaced by a no-op) and "retained" (as shipped), one
torch thread. A process builds one mode as ``learner_update.py`` does (batch
1,024, random-policy buffer), warms up one round, then times ``--updates``
rounds with ``time.process_time`` (CPU seconds, not inflated by waiting for a
core on a shared machine) and counts the minor page faults of those rounds.
Prints the median per mode and side and writes JSON.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(HERE)

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {here!r})
import ray, torch
import rllib_mamt.joint_learner as joint_learner
if {default}:
    joint_learner.retain_freed_memory = lambda: False
from learner_update import MODES, build
ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
algo = build({env!r}, {{}}, MODES[{mode!r}], seed=0)
torch.set_num_threads(1)
algo.update_from_buffer()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
start = time.process_time()
for _ in range({rounds}):
    algo.update_from_buffer()
seconds = time.process_time() - start
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
updates = {rounds} * algo.config.num_updates_per_round
print("RESULT", json.dumps({{"seconds_per_update": seconds / updates,
                            "page_faults_per_update": faults / updates}}))
algo.stop()
"""


def measure(env, mode, default, rounds):
    """One fresh process's CPU seconds and minor page faults per update."""
    code = CHILD.format(here=HERE, default=default, env=env, mode=mode, rounds=rounds)
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPOSITORY,
        env=dict(os.environ, PYTHONPATH=REPOSITORY, OMP_NUM_THREADS="1")).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def main():
    """Command line: alternating rounds, a table and JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="rover_tower")
    parser.add_argument("--modes", nargs="+", default=["MAAC", "MAMT"])
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per side and mode")
    parser.add_argument("--updates", type=int, default=5, help="timed rounds of updates per process")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "learner_memory.json"))
    args = parser.parse_args()
    samples = {(mode, side): [] for mode in args.modes for side in ("default", "retained")}
    for _ in range(args.rounds):
        for mode in args.modes:
            for side in ("default", "retained"):
                samples[(mode, side)].append(measure(args.env, mode, side == "default", args.updates))
    rows = []
    print(f"{'mode':<6} {'glibc':<9} {'CPU s/update':>13} {'page faults/update':>19} {'ratio':>6}")
    for mode in args.modes:
        base = statistics.median(s["seconds_per_update"] for s in samples[(mode, "default")])
        for side in ("default", "retained"):
            seconds = statistics.median(s["seconds_per_update"] for s in samples[(mode, side)])
            faults = statistics.median(s["page_faults_per_update"] for s in samples[(mode, side)])
            rows.append({"mode": mode, "glibc": side, "seconds_per_update": seconds,
                         "page_faults_per_update": faults, "ratio_to_default": seconds / base,
                         "samples": samples[(mode, side)]})
            print(f"{mode:<6} {side:<9} {seconds:13.4f} {faults:19.0f} {seconds / base:6.2f}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump({"env": args.env, "clock": "process CPU time, 1 torch thread", "rows": rows},
                  handle, indent=1)


if __name__ == "__main__":
    main()

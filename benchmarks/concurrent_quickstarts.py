"""Wall time of the Python quickstart alone and with several copies at once.

    python benchmarks/concurrent_quickstarts.py [--copies 4] [--iterations 10]
        [--threads default torch]

Runs ``examples/quickstart_spread.py`` once alone, then ``--copies`` copies at
the same time, and reports each copy's wall time and the ratio to the solo run.
``--threads default`` uses the learner's own thread setting (the CPUs it was
given); ``--threads torch`` passes ``--learner-torch-threads`` = the machine's
core count, which is torch's default and what the learner used before it set
threads itself. Both can be given to run them side by side. Writes JSON.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

QUICKSTART = os.path.join(os.path.dirname(__file__), "..", "examples", "quickstart_spread.py")


def run_copies(copies: int, iterations: int, threads: str):
    command = [sys.executable, QUICKSTART, "--iterations", str(iterations),
               "--no-checkpoint"]
    if threads == "torch":
        command += ["--learner-torch-threads", str(os.cpu_count())]
    started = time.perf_counter()
    processes = [
        subprocess.Popen(command + ["--seed", str(seed)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        for seed in range(copies)
    ]
    finished = []
    for process in processes:
        if process.wait() != 0:
            raise RuntimeError(f"quickstart exited with {process.returncode}")
        finished.append(time.perf_counter() - started)
    return finished


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--threads", nargs="+", default=["default"],
                        choices=["default", "torch"])
    parser.add_argument("--out", default="concurrent_quickstarts.json")
    args = parser.parse_args()
    results = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
               "iterations": args.iterations, "copies": args.copies, "runs": {}}
    for threads in args.threads:
        solo = run_copies(1, args.iterations, threads)[0]
        together = run_copies(args.copies, args.iterations, threads)
        results["runs"][threads] = {
            "solo_seconds": solo, "concurrent_seconds": together,
            "worst_ratio_to_solo": max(together) / solo,
        }
        print(f"threads={threads}: solo {solo:.0f} s; {args.copies} at once "
              f"{', '.join(f'{t:.0f}' for t in together)} s; worst/solo "
              f"{max(together) / solo:.2f}", flush=True)
    with open(args.out, "w") as handle:
        json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()

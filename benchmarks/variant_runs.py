"""Resumable A/B runs: named training variants x seeds, two processes at a time.

    python benchmarks/variant_runs.py benchmarks/variants/FILE.json [--jobs 2]
    python benchmarks/variant_runs.py benchmarks/variants/FILE.json --summary

FILE.json names an env, an env-step budget, seeds, settings common to all runs
and the variants (each a dict of ``MAMTConfig.training()`` settings, optionally
with ``"__code__": DIR`` to run another checkout of the package, e.g. the code
before a change). Every (variant, seed) run trains with one torch thread,
checkpoints every ``checkpoint_every`` iterations under ``--work-dir`` and
continues from there if stopped; a finished run leaves ``VARIANT/seed_S.json``
(training curve, δ_i per agent over training where the mode learns or sets it,
the learner's mean C_ij per agent pair over training where the mode computes C,
final training return = mean over the last tenth of the curve, deterministic
evaluation return) and is never run again, so the command
is idempotent. ``--summary`` prints mean ± std over seeds per variant and
writes ``summary.json`` beside the runs.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(HERE)


def load_plan(path):
    with open(path) as handle:
        plan = json.load(handle)
    for key in ("env", "env_steps", "seeds", "variants"):
        if key not in plan:
            raise SystemExit(f"{path}: missing '{key}'")
    return plan


def result_path(out_dir, variant, seed):
    return os.path.join(out_dir, variant, f"seed_{seed}.json")


def run_one(plan, variant, seed, out_dir, work_dir):
    """Trains one (variant, seed) to the budget, resuming from its checkpoint."""
    import torch

    torch.set_num_threads(1)
    import ray
    from ray.rllib.algorithms.algorithm import Algorithm

    from rllib_mamt import MAMTConfig

    settings = dict(plan.get("common", {}))
    settings.update({k: v for k, v in plan["variants"][variant].items() if k != "__code__"})
    checkpoint = os.path.join(work_dir, variant, f"seed_{seed}")
    progress_file = os.path.join(checkpoint, "curve.json")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    if os.path.exists(progress_file):
        algo = Algorithm.from_checkpoint(checkpoint)
        with open(progress_file) as handle:
            progress = json.load(handle)
        curve, delta_curve = (progress, []) if isinstance(progress, list) else (
            progress["curve"], progress["deltas"])
        coordination_curve = [] if isinstance(progress, list) else progress.get("coordination", [])
    else:
        config = (
            MAMTConfig()
            .environment(plan["env"], env_config=plan.get("env_config", {}))
            .env_runners(num_env_runners=0)
            .training(**settings)
            .evaluation(evaluation_interval=10**6, evaluation_num_env_runners=0,
                        evaluation_duration=plan.get("eval_episodes", 20))
            .debugging(seed=seed)
        )
        algo = config.build_algo()
        curve, delta_curve, coordination_curve = [], [], []
    started = time.time()
    steps = curve[-1][0] if curve else 0
    every = plan.get("checkpoint_every", 20)
    while steps < plan["env_steps"]:
        result = algo.train()
        steps = result["num_env_steps_sampled_lifetime"]
        curve.append((steps, result["env_runners"].get("episode_return_mean", float("nan"))))
        learners = result.get("learners", {})
        deltas = {agent: float(values["trust_region_delta"]) for agent, values in learners.items()
                  if isinstance(values, dict) and "trust_region_delta" in values}
        if deltas:
            delta_curve.append((steps, deltas))
        coordination = {agent: {other: float(c) for other, c in values["coordination"].items()}
                        for agent, values in learners.items()
                        if isinstance(values, dict) and "coordination" in values}
        if coordination:
            coordination_curve.append((steps, coordination))
        if result["training_iteration"] % every == 0:
            algo.save(checkpoint)
            with open(progress_file, "w") as handle:
                json.dump({"curve": curve, "deltas": delta_curve,
                           "coordination": coordination_curve}, handle)
    evaluation = algo.evaluate()["env_runners"]["episode_return_mean"]
    algo.stop()
    tail = [r for _, r in curve[-max(1, len(curve) // 10):]]
    record = {"variant": variant, "seed": seed, "env": plan["env"], "settings": settings,
              "eval_return": evaluation, "final_training_return": statistics.fmean(tail),
              "curve": curve, "trust_region_deltas": delta_curve,
              "coordination_coefficients": coordination_curve,
              "seconds_this_session": time.time() - started}
    os.makedirs(os.path.dirname(result_path(out_dir, variant, seed)), exist_ok=True)
    with open(result_path(out_dir, variant, seed), "w") as handle:
        json.dump(record, handle)


def pending_runs(plan, out_dir, variants):
    return [(v, s) for v in variants for s in plan["seeds"]
            if not os.path.exists(result_path(out_dir, v, s))]


def orchestrate(args, plan, out_dir):
    variants = args.variants or list(plan["variants"])
    queue = pending_runs(plan, out_dir, variants)
    running = []
    print(f"{len(queue)} runs to do, {args.jobs} at a time", flush=True)
    while queue or running:
        while queue and len(running) < args.jobs:
            variant, seed = queue.pop(0)
            code = plan["variants"][variant].get("__code__", REPOSITORY)
            environment = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.path.abspath(code))
            command = [sys.executable, os.path.abspath(__file__), args.plan, "--one", variant,
                       str(seed), "--out-dir", out_dir, "--work-dir", args.work_dir]
            log = open(os.path.join(args.work_dir, f"{variant}_seed_{seed}.log"), "a")
            running.append((variant, seed, subprocess.Popen(
                command, env=environment, stdout=log, stderr=subprocess.STDOUT, cwd=code)))
            print(f"started {variant} seed {seed}", flush=True)
        time.sleep(5)
        for entry in list(running):
            variant, seed, process = entry
            if process.poll() is not None:
                running.remove(entry)
                print(f"finished {variant} seed {seed}: exit {process.returncode}", flush=True)


def summarise(plan, out_dir):
    summary = {}
    print(f"{'variant':<28} {'seeds':>5} {'final training':>16} {'deterministic eval':>20}")
    for variant in plan["variants"]:
        records = []
        for seed in plan["seeds"]:
            path = result_path(out_dir, variant, seed)
            if os.path.exists(path):
                with open(path) as handle:
                    records.append(json.load(handle))
        if not records:
            continue
        row = {"seeds": [r["seed"] for r in records]}
        for key in ("final_training_return", "eval_return"):
            values = [r[key] for r in records]
            row[key] = {"mean": statistics.fmean(values),
                        "std": statistics.pstdev(values), "values": values}
        summary[variant] = row
        print(f"{variant:<28} {len(records):>5} "
              f"{row['final_training_return']['mean']:>9.1f} ± {row['final_training_return']['std']:<4.1f} "
              f"{row['eval_return']['mean']:>13.1f} ± {row['eval_return']['std']:<4.1f}")
    with open(os.path.join(out_dir, "summary.json"), "w") as handle:
        json.dump({"plan": plan, "summary": summary}, handle, indent=2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--variants", nargs="*", help="only these variants")
    parser.add_argument("--out-dir", help="default: benchmarks/recorded/<plan name>")
    parser.add_argument("--work-dir", default=os.path.join(REPOSITORY, "benchmarks", "results", "variant_runs"))
    parser.add_argument("--summary", action="store_true")
    parser.add_argument("--one", nargs=2, metavar=("VARIANT", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.plan = os.path.abspath(args.plan)
    plan = load_plan(args.plan)
    name = os.path.splitext(os.path.basename(args.plan))[0]
    out_dir = os.path.abspath(args.out_dir or os.path.join(HERE, "recorded", name))
    if not args.one:
        args.work_dir = os.path.join(args.work_dir, name)
    args.work_dir = os.path.abspath(args.work_dir)
    os.makedirs(args.work_dir, exist_ok=True)
    if args.one:
        run_one(plan, args.one[0], int(args.one[1]), out_dir, args.work_dir)
    elif args.summary:
        summarise(plan, out_dir)
    else:
        orchestrate(args, plan, out_dir)


if __name__ == "__main__":
    main()

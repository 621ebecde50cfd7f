"""Each agent's own return, measured on the kept checkpoints of finished paper-budget runs.

    python benchmarks/checkpoint_agent_returns.py PLAN_OR_CAMPAIGN [--episodes 100] [--seed 0]
        [--root benchmarks]

Runs finished before ``paper_budget.py`` recorded per-agent returns have only
the sum over agents. For every finished run of the plan (or of every stage of
a campaign) whose checkpoint is still under ``results/paper_budget/``, this
plays the checkpoint's actors for ``--episodes`` episodes twice, with argmax
actions (``deterministic``, as Table 10's evaluation) and with actions drawn
from the policies (``stochastic``, as the paper's training return), and stores
both in the run's summary as ``checkpoint_eval``:
``{"checkpoint_episodes": episodes trained at the checkpoint, "episodes": N,
"seed": S, "deterministic": {"return_mean": ..., "agent_return_mean": {agent:
...}}, "stochastic": {...}}``. A summary that already has it for the same
``--episodes`` and ``--seed`` is skipped, so rerunning is idempotent. Runs
that finish now get the same entry from ``paper_budget.py`` itself, on their
final weights; for the older ones the checkpoint is their last, up to
``checkpoint_every`` iterations before the end (``checkpoint_episodes`` says
where).
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import paper_budget  # noqa: E402
import run_summary  # noqa: E402


def store(path, entry):
    """Adds ``entry`` to the summary at ``path`` as ``checkpoint_eval``, atomically."""
    summary = run_summary.load(path)
    summary["checkpoint_eval"] = entry
    with open(path + ".tmp", "w") as handle:
        json.dump(run_summary.validate(summary, path), handle, indent=1)
    os.replace(path + ".tmp", path)


def measure_stage(stage, episodes, seed):
    """Measures every finished run of ``stage`` that has a checkpoint and no
    measurement with these settings yet; returns the lines it printed."""
    lines = []
    for row in stage.rows:
        for run_seed in stage.seeds:
            path = paper_budget.summary_path(stage.out_dir, row, run_seed)
            checkpoint = os.path.join(paper_budget.run_dir(stage.work_dir, row, run_seed),
                                      "checkpoint")
            if not os.path.exists(path) or not os.path.exists(
                    os.path.join(checkpoint, "progress.json")):
                continue
            done = run_summary.load(path).get("checkpoint_eval", {})
            if done.get("episodes") == episodes and done.get("seed") == seed:
                continue
            entry = run_summary.checkpoint_eval(checkpoint, episodes, seed)
            store(path, entry)
            line = (f"{os.path.basename(stage.plan_path)} {row} seed {run_seed}: " + "; ".join(
                f"{mode} {entry[mode]['return_mean']:.2f} (" + ", ".join(
                    f"{agent} {value:.2f}" for agent, value in entry[mode]["agent_return_mean"].items())
                + ")" for mode in ("deterministic", "stochastic")))
            print(line, flush=True)
            lines.append(line)
    return lines


def main():
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan", help="a paper_budget plan or campaign file")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", default=HERE,
                        help="where recorded/ and results/ are (default: this checkout's benchmarks/)")
    args = parser.parse_args()
    if args.episodes < 1:
        raise SystemExit(f"--episodes is {args.episodes}; allowed: an int >= 1")
    import torch

    torch.set_num_threads(1)
    import rllib_mamt  # noqa: F401  (registers the environments)

    for stage in paper_budget.load_stages(args.plan, os.path.abspath(args.root)):
        measure_stage(stage, args.episodes, args.seed)


if __name__ == "__main__":
    main()

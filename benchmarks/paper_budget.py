"""Paper-budget runs (Table 10): table rows x seeds, resumable, two processes at a time.

    python benchmarks/paper_budget.py benchmarks/plans/table10_spread.json [--jobs 2] [--rows MAMT MAAC]
    python benchmarks/paper_budget.py PLAN --status   # each run's state, then the process-hours left
    python benchmarks/paper_budget.py benchmarks/plans/issue14_campaign.json   # several plans in order
    python benchmarks/paper_budget.py CAMPAIGN --until 03:10   # before then, runs that end by then

A plan (JSON) names the env (``env``, ``env_config``), the budget in training
episodes (``episodes``), the ``seeds``, ``common`` training settings, and the
``rows``: each ``{"algorithm": registered name, "training": {...}}`` (plus
``"use_common": false`` for baselines whose config does not take the common
settings, and ``"search": path`` for rows that take the searched values of a
hyper-parameter search's best trial; they wait until its summary exists). ``episodes_per_iteration`` (default 40 = 1,000 env steps per training
iteration, ``min_sample_timesteps_per_iteration``, / 25-step episodes) is the
smoothing window that makes RLlib's ``episode_return_mean`` the mean of
exactly one iteration's episodes (of its last ``episodes_per_iteration`` if
an iteration finishes more); a run stops with an error naming the key if an
iteration finishes fewer.

Every (row, seed) run is one subprocess with one torch thread. It checkpoints
(weights, optimisers and replay buffer: RLlib's exact resume) every
``checkpoint_every`` iterations under ``--work-dir`` (git-ignored
``benchmarks/results/paper_budget/PLAN/``), atomically together with its
training curve and, every ``decomposition_every`` (10) iterations, the
per-agent δ_i, D_ns,i and C_ij the learner logged (Figs. 3-5) and, on
Rover-Tower, the critic's C toward each row's partner at every checkpoint
(``coordination_history``: the pairs are redrawn every episode, so the mean
C_ij cannot show them), and continues from there when started again. A finished run
writes ``ROW/seed_S.json`` in the run-summary format (``run_summary.py``) to
``--out-dir`` (default ``benchmarks/recorded/PLAN/``) and is skipped from then
on, so rerunning the command is idempotent; if the plan's ``episodes`` is
raised later, the run continues from its checkpoint to the new budget and
rewrites its summary (with the final C of its critic on replayed rows,
``final_coordination``). Every iteration also records each agent's own
training return (summary key ``agents``), and a finished run saves its final
state and plays it for ``checkpoint_eval_episodes`` (100) episodes, the same
ones for every run, with argmax and with drawn actions (``checkpoint_eval``;
``checkpoint_agent_returns.py`` measures runs that finished before this). Rows whose algorithm is not
registered (baselines still being built) are listed as skipped.

A campaign file (``{"campaign": [{"plan": ..., "rows": [...], "seeds":
[...]}, ...]}``, e.g. ``benchmarks/plans/issue14_campaign.json``; ``rows``
and ``seeds`` optional) runs several plans in its order with the same
skip-and-resume rules, so one command carries a whole reproduction across
sessions. A stage with ``"report": false`` is run but left out of
``table10_report.py``'s tables (a diagnostic at a shorter budget, whose
runs must not be pooled with the full-budget runs of the same row).

A run's process holds a lock (``seed_S.lock`` beside its checkpoint
directory) while it trains: a second orchestrator leaves that run out and
``--status`` shows it as "training now". ``--until HH:MM`` (the end of the
working session) makes a free core take the first queued run estimated to
finish before then (episodes left × its row's measured seconds per episode, or
its plan's slowest measured row's), and the next in order if none does: a run
still training when a session ends loses its work if the next session is on
another machine.
"""

import argparse
import datetime
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import run_summary  # noqa: E402

PLAN_KEYS = ("env", "episodes", "seeds", "rows")
# Optional plan keys with their defaults; every count must be an int >= 1.
PLAN_COUNTS = {"episodes_per_iteration": 40, "checkpoint_every": 50, "decomposition_every": 10,
               "eval_episodes": 10, "last_episodes": 1000, "bin_episodes": 50,
               "checkpoint_eval_episodes": 100}
PLAN_MAPPINGS = ("env_config", "common")
ROW_KEYS = ("algorithm", "training", "use_common", "search")
CAMPAIGN_STAGE_KEYS = ("plan", "rows", "seeds", "report")


def is_count(value, minimum=1):
    """An int >= ``minimum`` (and not a bool, which Python counts as an int)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def plan_count(plan, key):
    """The plan's count ``key``, or its default (``PLAN_COUNTS``)."""
    return plan.get(key, PLAN_COUNTS[key])


def load_plan(path):
    """Reads a plan and raises ``SystemExit`` with the key for a bad one: a
    missing or unknown key, a count that is not an int >= 1, seeds that are not
    distinct ints >= 0, or a row that is not ``{"algorithm": ..., ...}``."""
    with open(path) as handle:
        plan = json.load(handle)
    for key in PLAN_KEYS:
        if key not in plan:
            raise SystemExit(f"{path}: missing key '{key}'; required: {list(PLAN_KEYS)}")
    allowed = PLAN_KEYS + tuple(PLAN_COUNTS) + PLAN_MAPPINGS + ("description",)
    for key in plan:
        if key not in allowed:
            raise SystemExit(f"{path}: unknown key '{key}'; allowed: {list(allowed)}")
    for key in ("episodes",) + tuple(PLAN_COUNTS):
        if key in plan and not is_count(plan[key]):
            raise SystemExit(f"{path}: key '{key}' is {plan[key]!r}; allowed: an int >= 1")
    seeds = plan["seeds"]
    if (not isinstance(seeds, list) or not seeds or not all(is_count(s, 0) for s in seeds)
            or len(set(seeds)) != len(seeds)):
        raise SystemExit(f"{path}: key 'seeds' is {seeds!r}; allowed: a non-empty list of "
                         "distinct ints >= 0")
    for key in PLAN_MAPPINGS:
        if not isinstance(plan.get(key, {}), dict):
            raise SystemExit(f"{path}: key '{key}' is {plan[key]!r}; allowed: a dict")
    if not isinstance(plan["rows"], dict) or not plan["rows"]:
        raise SystemExit(f"{path}: key 'rows' is {plan['rows']!r}; allowed: a non-empty dict "
                         "of row name to {'algorithm': ...}")
    for row, spec in plan["rows"].items():
        if not isinstance(spec, dict) or "algorithm" not in spec:
            raise SystemExit(f"{path}: row '{row}' is {spec!r}; allowed: a dict with 'algorithm'")
        unknown = [key for key in spec if key not in ROW_KEYS]
        if unknown:
            raise SystemExit(f"{path}: row '{row}' has unknown key '{unknown[0]}'; "
                             f"allowed: {list(ROW_KEYS)}")
    return plan


def summary_path(out_dir, row, seed):
    """Where the finished run's summary JSON goes."""
    return os.path.join(out_dir, row, f"seed_{seed}.json")


def run_dir(work_dir, row, seed):
    """The run's checkpoint directory (``checkpoint`` inside it), log beside it."""
    return os.path.join(work_dir, row, f"seed_{seed}")


def lock_path(work_dir, row, seed):
    """The file a run's process holds an exclusive lock on while it trains."""
    return run_dir(work_dir, row, seed) + ".lock"


def take_lock(handle):
    """Whether this process got the exclusive lock on the open file ``handle``
    (False if another open file of the lock holds it)."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def hold_run_lock(work_dir, row, seed):
    """Takes the run's lock for the life of this process (the open file is
    returned; the lock goes with the process), or stops with one line if another
    process holds it: two processes must never train one run (they would
    overwrite each other's checkpoint)."""
    path = lock_path(work_dir, row, seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handle = open(path, "a")
    if not take_lock(handle):
        handle.close()
        raise SystemExit(f"run {row} seed {seed} is already being trained by another process "
                         f"(lock {path}); allowed: one process per run")
    return handle


def is_running(work_dir, row, seed):
    """Whether another process holds the run's lock (:func:`hold_run_lock`)."""
    path = lock_path(work_dir, row, seed)
    if not os.path.exists(path):
        return False
    with open(path, "a") as handle:
        return not take_lock(handle)  # a lock taken here goes with the closed file


def searched_settings(spec):
    """The best finished trial's searched values (``settings``) of the row's ``"search"``
    summary (a path relative to the repository, written by
    ``tuned_examples/spread_mamt_search.py``), None while it has none."""
    path = os.path.join(REPOSITORY, spec["search"])
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        best = json.load(handle).get("best")
    if not best:
        return None
    return dict(best["settings"])


def training_settings(plan, row):
    """``common`` (unless the row opts out), then the searched values (rows
    with ``"search"``), then the row's ``training``."""
    spec = plan["rows"][row]
    settings = dict(plan.get("common", {})) if spec.get("use_common", True) else {}
    if "search" in spec:
        searched = searched_settings(spec)
        if searched is None:
            raise SystemExit(f"row '{row}' takes its settings from the search summary "
                             f"{spec['search']}, which has no finished best trial yet")
        settings.update(searched)
    settings.update(spec.get("training", {}))
    return settings


def settings_conflict(plan, row, recorded, what):
    """A one-line message if the ``recorded`` training settings (of a finished
    run's summary or of a checkpoint) differ from those the plan now gives
    ``row`` (a changed search selection or plan), else None."""
    wanted = json.loads(json.dumps(training_settings(plan, row)))
    recorded = json.loads(json.dumps(recorded))
    if recorded == wanted:
        return None
    key = sorted(k for k in set(wanted) | set(recorded) if wanted.get(k) != recorded.get(k)
                 or (k in wanted) != (k in recorded))[0]
    return (f"{what} was trained with {key}={recorded.get(key, '<unset>')!r}, but the plan now "
            f"gives row '{row}' {key}={wanted.get(key, '<unset>')!r}; allowed: the plan's settings "
            "(move the summary and the checkpoint aside to rerun the run)")


def registered_rows(plan, rows):
    """Splits ``rows`` into those whose algorithm is registered and the rest."""
    import rllib_mamt  # noqa: F401  (registers the algorithms)
    from ray.tune.error import TuneError
    from ray.tune.registry import get_trainable_cls

    ready, skipped = [], []
    for row in rows:
        try:
            get_trainable_cls(plan["rows"][row]["algorithm"])
            ready.append(row)
        except TuneError:
            skipped.append(row)
    return ready, skipped


def pending_runs(plan, out_dir, rows, seeds=None):
    """(row, seed) pairs without a summary yet, or whose summary has fewer
    episodes than the plan now asks (the run is extended from its checkpoint,
    or trained again if that is gone), in row-major order, over ``seeds``
    (default: the plan's).

    Raises:
        SystemExit: If a finished run's summary was trained with other settings
            than the plan now gives its row (:func:`settings_conflict`).
    """
    pending = []
    for row in rows:
        for seed in plan["seeds"] if seeds is None else seeds:
            path = summary_path(out_dir, row, seed)
            if not os.path.exists(path):
                pending.append((row, seed))
                continue
            with open(path) as handle:
                recorded = json.load(handle)
            conflict = settings_conflict(plan, row, recorded["training"], path)
            if conflict:
                raise SystemExit(conflict)
            if recorded["episodes"] < plan["episodes"]:
                pending.append((row, seed))
    return pending


def recover_checkpoint(directory):
    """Returns the last complete checkpoint dir (after a kill mid-save) or None."""
    current, old, new = (os.path.join(directory, name) for name in
                         ("checkpoint", "checkpoint.old", "checkpoint.new"))
    shutil.rmtree(new, ignore_errors=True)
    if not os.path.exists(current) and os.path.exists(old):
        os.rename(old, current)
    shutil.rmtree(old, ignore_errors=True)
    return current if os.path.exists(os.path.join(current, "progress.json")) else None


def save_checkpoint(algo, progress, directory):
    """Saves algorithm state and progress together; a kill leaves one complete copy."""
    current, old, new = (os.path.join(directory, name) for name in
                         ("checkpoint", "checkpoint.old", "checkpoint.new"))
    shutil.rmtree(new, ignore_errors=True)
    algo.save(new)
    with open(os.path.join(new, "progress.json"), "w") as handle:
        json.dump(progress, handle)
    if os.path.exists(current):
        os.rename(current, old)
    os.rename(new, current)
    shutil.rmtree(old, ignore_errors=True)


def build_algorithm(plan, row, seed):
    """A fresh algorithm for (row, seed) on one CPU, evaluation deterministic."""
    from ray.tune.registry import get_trainable_cls

    window = plan_count(plan, "episodes_per_iteration")
    eval_episodes = plan_count(plan, "eval_episodes")
    config = (
        get_trainable_cls(plan["rows"][row]["algorithm"]).get_default_config()
        .environment(plan["env"], env_config=plan.get("env_config", {}))
        .env_runners(num_env_runners=0)
        .training(**training_settings(plan, row))
        .reporting(metrics_num_episodes_for_smoothing=window)
        .evaluation(evaluation_interval=10**9, evaluation_num_env_runners=0,
                    evaluation_duration=eval_episodes, evaluation_duration_unit="episodes",
                    evaluation_config={"explore": False,
                                       "metrics_num_episodes_for_smoothing": eval_episodes})
        .debugging(seed=seed)
    )
    return config.build_algo()


def run_one(plan, row, seed, out_dir, work_dir):
    """Trains (row, seed) to the episode budget, resuming from its checkpoint."""
    import torch

    torch.set_num_threads(1)
    import ray
    from ray.rllib.algorithms.algorithm import Algorithm

    import rllib_mamt  # noqa: F401  (registers algorithms and environments)

    directory = run_dir(work_dir, row, seed)
    os.makedirs(directory, exist_ok=True)
    lock = hold_run_lock(work_dir, row, seed)  # noqa: F841  (held until the process ends)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    checkpoint = recover_checkpoint(directory)
    if checkpoint:
        with open(os.path.join(checkpoint, "progress.json")) as handle:
            progress = json.load(handle)
        if "training" in progress:
            conflict = settings_conflict(plan, row, progress["training"], checkpoint)
            if conflict:
                raise SystemExit(conflict)
        else:
            progress["training"] = training_settings(plan, row)
            print(f"{checkpoint} predates recorded settings; taking the plan's", flush=True)
        algo = Algorithm.from_checkpoint(checkpoint)
        print(f"resumed {row} seed {seed} at {progress['episodes']} episodes", flush=True)
    else:
        algo = build_algorithm(plan, row, seed)
        progress = {"curve": [], "episodes": 0, "env_steps": 0, "iterations": 0,
                    "process_seconds": 0.0, "training": training_settings(plan, row)}
    window = plan_count(plan, "episodes_per_iteration")
    every = plan_count(plan, "checkpoint_every")
    decomposition_every = plan_count(plan, "decomposition_every")
    started = time.time()
    while progress["episodes"] < plan["episodes"]:
        result = algo.train()
        runners = result["env_runners"]
        finished = int(runners.get("num_episodes", 0))
        if 0 < finished < window:
            raise SystemExit(
                f"plan key 'episodes_per_iteration' is {window}, but iteration "
                f"{result['training_iteration']} finished {finished} episodes; allowed: at most "
                "the number a training iteration finishes (min_sample_timesteps_per_iteration / "
                "episode length), so that RLlib's mean covers no older episode")
        progress["episodes"] = int(runners["num_episodes_lifetime"])
        progress["env_steps"] = int(result["num_env_steps_sampled_lifetime"])
        progress["iterations"] = int(result["training_iteration"])
        progress["curve"].append((finished, min(finished, window), progress["env_steps"],
                                  float(runners.get("episode_return_mean", 0.0))))
        progress.setdefault("agent_curve", []).append(
            (finished, min(finished, window), progress["env_steps"],
             run_summary.agent_returns(runners)))
        if progress["iterations"] % decomposition_every == 0:
            row_metrics = run_summary.decomposition_row(result)
            if row_metrics:
                progress.setdefault("decomposition", []).append(row_metrics)
        if progress["iterations"] % every == 0:
            record = measure_partner_contrast(algo, progress["episodes"])
            if record:
                progress.setdefault("coordination_history", []).append(record)
            progress["process_seconds"] += time.time() - started
            started = time.time()
            save_checkpoint(algo, progress, directory)
    if progress["iterations"] % every:  # the final weights, for checkpoint_eval and extensions
        progress["process_seconds"] += time.time() - started
        started = time.time()
        save_checkpoint(algo, progress, directory)
    evaluation = algo.evaluate()["env_runners"]
    progress["final_coordination"] = measure_final_coordination(algo)
    algo.stop()
    progress["checkpoint_eval"] = measure_checkpoint_eval(
        os.path.join(directory, "checkpoint"), plan_count(plan, "checkpoint_eval_episodes"))
    progress["process_seconds"] += time.time() - started
    write_summary(plan, row, seed, progress, evaluation, out_dir)


def measure_checkpoint_eval(checkpoint, episodes):
    """``run_summary.checkpoint_eval`` of a finished run's final checkpoint
    (reset seed 0: the same episodes for every run); None and a printed line
    if it fails, so that the run's summary is still written."""
    try:
        return run_summary.checkpoint_eval(checkpoint, episodes, 0)
    except Exception as error:  # an extra measurement must not lose a finished run
        print(f"checkpoint_eval not measured: {error!r}", flush=True)
        return None


def measure_final_coordination(algo):
    """``coordination_probe.coordination_summary`` of a finished run; if that
    measurement fails, {"error": ...} and a printed line, so that the run's
    summary is still written."""
    import coordination_probe

    try:
        return coordination_probe.coordination_summary(algo)
    except Exception as error:  # an extra measurement must not lose a finished run
        print(f"final_coordination not measured: {error!r}", flush=True)
        return {"error": repr(error)}


def measure_partner_contrast(algo, episodes):
    """``coordination_probe.partner_contrast_record`` at a checkpoint (None off
    Rover-Tower); a failure is printed and recorded as None, so training goes on."""
    import coordination_probe

    try:
        return coordination_probe.partner_contrast_record(algo, episodes)
    except Exception as error:  # an extra measurement must not stop a run
        print(f"coordination_history not measured at {episodes} episodes: {error!r}",
              flush=True)
        return None


def write_summary(plan, row, seed, progress, evaluation, out_dir):
    """Writes the run-summary JSON of a finished run (``run_summary`` format)."""
    from rllib_mamt.envs.registry import make_rllib_env

    last = plan_count(plan, "last_episodes")
    summary = {
        "format": run_summary.FORMAT,
        "row": row,
        "algorithm": plan["rows"][row]["algorithm"],
        "training": training_settings(plan, row),
        "env": plan["env"],
        "env_config": plan.get("env_config", {}),
        "n_agents": len(make_rllib_env(plan["env"], plan.get("env_config", {})).possible_agents),
        "seed": seed,
        "return_unit": run_summary.RETURN_UNIT,
        "curve": run_summary.binned_curve(progress["curve"], plan_count(plan, "bin_episodes")),
        "last_episodes": last,
        "last_1000_episodes_return": run_summary.last_episodes_mean(progress["curve"], last),
        "eval": {"episodes": plan_count(plan, "eval_episodes"),
                 "return_mean": float(evaluation["episode_return_mean"]),
                 "agent_return_mean": run_summary.agent_returns(evaluation)},
        "episodes": progress["episodes"],
        "env_steps": progress["env_steps"],
        "training_iterations": progress["iterations"],
        "process_seconds": progress["process_seconds"],
    }
    if progress.get("agent_curve"):
        recorded = sum(row[0] for row in progress["agent_curve"])
        summary["agents"] = run_summary.agent_summary(
            progress["agent_curve"], progress["episodes"] - recorded,
            plan_count(plan, "bin_episodes"), last)
    if progress.get("decomposition"):
        summary["decomposition"] = progress["decomposition"]
    for key in ("coordination_history", "final_coordination", "checkpoint_eval"):
        if progress.get(key):
            summary[key] = progress[key]
    path = summary_path(out_dir, row, seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as handle:
        json.dump(run_summary.validate(summary, path), handle, indent=1)
    os.replace(path + ".tmp", path)


class Stage:
    """One plan of a run: its file, contents, rows and output/checkpoint dirs."""

    def __init__(self, plan_path, rows=None, out_dir=None, work_dir=None, root=HERE,
                 seeds=None, report=True):
        self.plan_path = os.path.abspath(plan_path)
        self.report = report
        self.plan = load_plan(self.plan_path)
        name = os.path.splitext(os.path.basename(self.plan_path))[0]
        self.out_dir = os.path.abspath(out_dir or os.path.join(root, "recorded", name))
        self.work_dir = os.path.abspath(
            work_dir or os.path.join(root, "results", "paper_budget", name))
        unknown = [row for row in rows or [] if row not in self.plan["rows"]]
        if unknown:
            raise SystemExit(f"{self.plan_path}: rows {unknown} are not in the plan; "
                             f"allowed: {list(self.plan['rows'])}")
        self.rows = list(rows or self.plan["rows"])
        unknown = [seed for seed in seeds or [] if seed not in self.plan["seeds"]]
        if unknown or seeds == []:
            raise SystemExit(f"{self.plan_path}: seeds {seeds!r} are not a non-empty subset "
                             f"of the plan's; allowed: {self.plan['seeds']}")
        self.seeds = list(seeds or self.plan["seeds"])


def load_campaign(path, root=HERE):
    """The stages of a campaign file: ``{"campaign": [{"plan": path relative to
    the repository, "rows": [...] (optional), "seeds": [...] (optional, a
    subset of the plan's)}, ...]}``, run in order; their summaries and
    checkpoints go under ``root`` (``recorded/``, ``results/``). A stage with
    one seed before the same rows' stage with all of them gives every row a
    first seed before any row gets its others. ``"report": false`` (optional,
    default true) leaves a stage's runs out of ``table10_report.py``."""
    with open(path) as handle:
        campaign = json.load(handle)
    stages = campaign.get("campaign")
    if not isinstance(stages, list) or not all(isinstance(s, dict) and "plan" in s for s in stages):
        raise SystemExit(f"{path}: key 'campaign' is {stages!r}; allowed: a list of "
                         "{'plan': path, 'rows': [...]} dicts")
    for stage in stages:
        unknown = [key for key in stage if key not in CAMPAIGN_STAGE_KEYS]
        if unknown:
            raise SystemExit(f"{path}: stage {stage['plan']} has unknown key '{unknown[0]}'; "
                             f"allowed: {list(CAMPAIGN_STAGE_KEYS)}")
        if not isinstance(stage.get("report", True), bool):
            raise SystemExit(f"{path}: stage {stage['plan']} key 'report' is "
                             f"{stage['report']!r}; allowed: true or false")
    return [Stage(os.path.join(REPOSITORY, stage["plan"]), stage.get("rows"), root=root,
                  seeds=stage.get("seeds"), report=stage.get("report", True))
            for stage in stages]


def is_campaign_file(path):
    """Whether the JSON file at ``path`` is a campaign (key ``campaign``), not a plan."""
    with open(path) as handle:
        return "campaign" in json.load(handle)


def load_stages(path, root=HERE):
    """The stages of a plan file (one) or of a campaign file."""
    return load_campaign(path, root) if is_campaign_file(path) else [Stage(path, root=root)]


def pending_queue(stages):
    """(stage, row, seed) of every run without a summary, stage by stage,
    row-major, each run once (a later stage repeating it does not queue it
    again); rows waiting for their search summary are left out, with a line."""
    queue = []
    for stage in stages:
        rows, skipped = registered_rows(stage.plan, stage.rows)
        for row in skipped:
            print(f"skipped row {row}: algorithm '{stage.plan['rows'][row]['algorithm']}' "
                  "is not registered", flush=True)
        waiting = [row for row in rows if "search" in stage.plan["rows"][row]
                   and searched_settings(stage.plan["rows"][row]) is None]
        for row in waiting:
            print(f"skipped row {row}: waiting for the search summary "
                  f"{stage.plan['rows'][row]['search']} (run the search first)", flush=True)
        rows = [row for row in rows if row not in waiting]
        queued = {(earlier.plan_path, row, seed) for earlier, row, seed in queue}
        queue += [(stage, row, seed) for row, seed in
                  pending_runs(stage.plan, stage.out_dir, rows, stage.seeds)
                  if (stage.plan_path, row, seed) not in queued]
    return queue


def parse_deadline(value, now=None):
    """The ``--until`` deadline: ``HH:MM`` (local time, today, or tomorrow if
    that time has passed) or ``YYYY-MM-DDTHH:MM``."""
    now = now or datetime.datetime.now()
    try:
        if "T" in value:
            return datetime.datetime.fromisoformat(value)
        clock = datetime.datetime.strptime(value, "%H:%M")
    except ValueError:
        raise SystemExit(f"--until is {value!r}; allowed: HH:MM (today, or tomorrow if that "
                         "time has passed) or YYYY-MM-DDTHH:MM") from None
    deadline = now.replace(hour=clock.hour, minute=clock.minute, second=0, microsecond=0)
    return deadline if deadline > now else deadline + datetime.timedelta(days=1)


def next_run(queue, deadline=None, now=None):
    """The index in ``queue`` of the run to start next: the first one, or with
    a ``deadline`` the first whose :func:`estimated_hours` end before it (a run
    still training when a session ends loses its work if the next session is
    on another machine); the first one if none fits or none can be estimated,
    as its work is kept whenever the machine is."""
    if deadline is None:
        return 0
    hours_left = (deadline - (now or datetime.datetime.now())).total_seconds() / 3600.0
    for index, (stage, row, seed) in enumerate(queue):
        hours = estimated_hours(stage, row, seed)
        if hours is not None and hours <= hours_left:
            return index
    return 0


def orchestrate(stages, jobs, poll_seconds=5.0, deadline=None):
    """Runs every pending (row, seed) of the stages in order, ``jobs``
    subprocesses at a time (the next stage's runs fill a core as soon as it is
    free), leaving out runs another process is training (:func:`is_running`,
    checked again when a run's turn comes);
    with a ``deadline``, a free core takes the first run that ends before it
    (:func:`next_run`)."""
    def trained_elsewhere(stage, row, seed):
        if not is_running(stage.work_dir, row, seed):
            return False
        print(f"skipped {os.path.basename(stage.plan_path)} {row} seed {seed}: "
              "another process is training it", flush=True)
        return True

    queue = [entry for entry in pending_queue(stages) if not trained_elsewhere(*entry)]
    print(f"{len(queue)} runs to do, {jobs} at a time", flush=True)
    running, failures = [], 0
    while queue or running:
        while queue and len(running) < jobs:
            stage, row, seed = queue.pop(next_run(queue, deadline))
            if trained_elsewhere(stage, row, seed):  # another process may have taken it since
                continue
            environment = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                               PYTHONPATH=REPOSITORY)
            command = [sys.executable, os.path.abspath(__file__), stage.plan_path, "--one", row,
                       str(seed), "--out-dir", stage.out_dir, "--work-dir", stage.work_dir]
            os.makedirs(os.path.join(stage.work_dir, row), exist_ok=True)
            log = open(run_dir(stage.work_dir, row, seed) + ".log", "a")
            running.append((stage, row, seed, subprocess.Popen(
                command, env=environment, stdout=log, stderr=subprocess.STDOUT, cwd=REPOSITORY)))
            print(f"started {os.path.basename(stage.plan_path)} {row} seed {seed}", flush=True)
        time.sleep(poll_seconds)
        for entry in list(running):
            stage, row, seed, process = entry
            if process.poll() is not None:
                running.remove(entry)
                failures += process.returncode != 0
                print(f"finished {os.path.basename(stage.plan_path)} {row} seed {seed}: "
                      f"exit {process.returncode}", flush=True)
    return failures


def run_state(stage, row, seed):
    """One run's state: "done", "resumable at N episodes" or "not started",
    with the :func:`settings_conflict` message appended where the summary or
    checkpoint was trained with other settings than the plan now gives ``row``
    (the orchestrator stops on those)."""
    summary = summary_path(stage.out_dir, row, seed)
    progress = os.path.join(run_dir(stage.work_dir, row, seed), "checkpoint", "progress.json")
    if is_running(stage.work_dir, row, seed):
        state = "training now"
        if os.path.exists(progress):
            with open(progress) as handle:
                state += f", checkpoint at {json.load(handle)['episodes']} episodes"
        return state
    if os.path.exists(summary):
        state, source = "done", summary
    elif os.path.exists(progress):
        source = progress
    else:
        return "not started"
    with open(source) as handle:
        recorded = json.load(handle)
    if source == progress:
        state = f"resumable at {recorded['episodes']} episodes"
    elif recorded["episodes"] < stage.plan["episodes"]:
        state = f"to extend: its summary has {recorded['episodes']} episodes"
    if "training" not in recorded:
        return state
    try:
        conflict = settings_conflict(stage.plan, row, recorded["training"], source)
    except SystemExit as error:
        return f"{state}; its settings cannot be checked: {error}"
    return f"{state}; CONFLICT: {conflict}" if conflict else state


def status(stage):
    """Prints each run's state (:func:`run_state`)."""
    print(f"== {os.path.relpath(stage.plan_path, REPOSITORY)}")
    for row in stage.rows:
        for seed in stage.seeds:
            print(f"{row:<14} seed {seed:<4} {run_state(stage, row, seed)}")


def episodes_trained(stage, row, seed):
    """Episodes a pending run already has: its checkpoint's, else its
    (shorter than the plan) summary's, else 0."""
    progress = os.path.join(run_dir(stage.work_dir, row, seed), "checkpoint", "progress.json")
    for path in (progress, summary_path(stage.out_dir, row, seed)):
        if os.path.exists(path):
            with open(path) as handle:
                return json.load(handle)["episodes"]
    return 0


def seconds_per_episode(stage, row):
    """The mean of ``process_seconds / episodes`` over ``row``'s finished
    summaries in ``stage.out_dir`` (any seed), or None if it has none."""
    costs = []
    for seed in stage.plan["seeds"]:
        path = summary_path(stage.out_dir, row, seed)
        if os.path.exists(path):
            with open(path) as handle:
                recorded = json.load(handle)
            if recorded.get("process_seconds") and recorded.get("episodes"):
                costs.append(recorded["process_seconds"] / recorded["episodes"])
    return sum(costs) / len(costs) if costs else None


def estimated_seconds_per_episode(stage, row):
    """``row``'s :func:`seconds_per_episode`, or if it has no finished run the
    slowest of its plan's measured rows (a guess for rows not yet measured), or None."""
    own = seconds_per_episode(stage, row)
    if own is not None:
        return own
    measured = [cost for cost in (seconds_per_episode(stage, other) for other in stage.plan["rows"])
                if cost is not None]
    return max(measured) if measured else None


def checkpoint_seconds_per_episode(stage, row, seed):
    """``process_seconds / episodes`` of a pending run's own checkpoint, or
    None if it has none (or it records no process time)."""
    progress = os.path.join(run_dir(stage.work_dir, row, seed), "checkpoint", "progress.json")
    if not os.path.exists(progress):
        return None
    with open(progress) as handle:
        recorded = json.load(handle)
    if recorded.get("process_seconds") and recorded.get("episodes"):
        return recorded["process_seconds"] / recorded["episodes"]
    return None


def estimated_hours(stage, row, seed):
    """Process-hours (one core each) a pending run still needs: its episodes
    left × its row's :func:`seconds_per_episode`, else its own checkpoint's
    (:func:`checkpoint_seconds_per_episode`: a resumed run of a row with no
    finished seed), else the guess of :func:`estimated_seconds_per_episode`;
    None if none of these is measured."""
    cost = seconds_per_episode(stage, row)
    if cost is None:
        cost = checkpoint_seconds_per_episode(stage, row, seed)
    if cost is None:
        cost = estimated_seconds_per_episode(stage, row)
    if cost is None:
        return None
    return max(stage.plan["episodes"] - episodes_trained(stage, row, seed), 0) * cost / 3600.0


def remaining_cost(queue):
    """Process-hours the runs of ``queue`` (:func:`pending_queue`) still need,
    estimated as each run's episodes left × its row's measured seconds per
    episode (:func:`seconds_per_episode`, else its own checkpoint's), and the
    runs with neither to measure from: ``(hours, unmeasured_runs)``."""
    hours, unmeasured = 0.0, []
    for stage, row, seed in queue:
        if (seconds_per_episode(stage, row) is None
                and checkpoint_seconds_per_episode(stage, row, seed) is None):
            unmeasured.append((stage, row, seed))
        else:
            hours += estimated_hours(stage, row, seed)
    return hours, unmeasured


def main():
    """Command line: orchestrate a plan or a campaign, run one (row, seed), or print the status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan", help="a plan, or a campaign file (key 'campaign')")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rows", nargs="*", help="only these rows (a plan only)")
    parser.add_argument("--out-dir", help="default: benchmarks/recorded/<plan name>")
    parser.add_argument("--work-dir", help="default: benchmarks/results/paper_budget/<plan name>")
    parser.add_argument("--root", default=HERE,
                        help="where recorded/ and results/ go (default: this checkout's "
                             "benchmarks/; e.g. the main checkout's when running a snapshot)")
    parser.add_argument("--status", action="store_true")
    parser.add_argument("--until", metavar="HH:MM",
                        help="when the working session ends: a free core takes the first queued "
                             "run estimated to finish before then (runs cut off by a machine "
                             "change lose their checkpoints), else the next in order")
    parser.add_argument("--poll-seconds", type=float, default=5.0, help=argparse.SUPPRESS)
    parser.add_argument("--one", nargs=2, metavar=("ROW", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    deadline = parse_deadline(args.until) if args.until else None
    if is_campaign_file(args.plan):
        if args.rows or args.one or args.out_dir or args.work_dir:
            raise SystemExit(f"{args.plan} is a campaign; --rows, --out-dir and --work-dir "
                             "are set per stage in it (allowed with a campaign: --jobs, --status)")
        stages = load_campaign(args.plan, os.path.abspath(args.root))
    else:
        stages = [Stage(args.plan, args.rows, args.out_dir, args.work_dir,
                        os.path.abspath(args.root))]
    if args.one:
        stage = stages[0]
        run_one(stage.plan, args.one[0], int(args.one[1]), stage.out_dir, stage.work_dir)
    elif args.status:
        for stage in stages:
            status(stage)
        queue = pending_queue(stages)
        hours, unmeasured = remaining_cost(queue)
        print(f"{len(queue)} runs to do: ~{hours:.1f} process-hours for the "
              f"{len(queue) - len(unmeasured)} whose row has a finished run or that have a "
              f"checkpoint (at its measured seconds per episode), plus {len(unmeasured)} runs "
              "not yet measured")
    else:
        sys.exit(1 if orchestrate(stages, args.jobs, args.poll_seconds, deadline) else 0)


if __name__ == "__main__":
    main()

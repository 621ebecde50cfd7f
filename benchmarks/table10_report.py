"""Table 10 from committed run summaries: table, rliable statistics, marl-eval JSON, Fig. 2.

    python benchmarks/table10_report.py benchmarks/plans/issue14_campaign.json
    python benchmarks/table10_report.py benchmarks/recorded/table10_spread \
        benchmarks/recorded/table10_rover_tower --out benchmarks/figures/table10

Reads every ``*/seed_*.json`` run summary (format: ``run_summary.py``) under the
given directories, or under the summary directories of the given plan or
campaign files (``paper_budget.py``'s; a plan without finished runs yet is
passed over with a line; so is a run shorter than its task's longest, until it is
extended to the raised budget), and writes to ``--out``:

- ``table10.md``: per task and row, the paper's Table 10 value beside ours:
  mean ± std over seeds (std with ddof=1) of the paper's metric (mean training
  return over the last 1,000 episodes) in our unit (sum over agents) and in the
  paper's unit (per-agent mean; for Spread's ``mpe2`` variant minus the 25
  self-collision penalties the paper's env adds, DESIGN.md), the interquartile
  mean (IQM) with its 95 % stratified-bootstrap confidence interval, and the
  deterministic evaluation, and the slope of the training curve per 1,000
  episodes over the last 20 % of the episodes, at least 3,000
  (``final_slope``: near 0 once a row has flattened; a second table gives
  the slope over each fifth of the episodes, ``window_slopes``, to show
  whether the rise slows down), and the mean training return over the
  first 20 % of the episodes (``early_return``: Fig. 8 claims speed as well
  as the end result); then the probability of improvement of every row
  over every other with its 95 % CI. IQM, CIs and probabilities come from
  ``rliable`` (``library.get_interval_estimates`` with
  ``metrics.aggregate_iqm`` and ``metrics.probability_of_improvement``), one
  task at a time, runs = seeds.
  Each task also states its cost: runs and process-hours (the sum of the
  runs' ``process_seconds``). Last, per row, how many seeds a two-sided
  two-sample t-test (α = 0.05, power 0.8; statsmodels' exact power) would need
  to tell it from MAAC, from our pooled seed std, for our gap and for the
  paper's (``seeds_to_separate``; issue 14 asks for it where 3 seeds do not
  separate the modes).
- ``statistics.json``: the same numbers, machine-readable.
- ``marl_eval.json``: the raw-experiment format ``marl-eval`` reads (written by
  its ``JsonLogger``, BenchMARL and Mava):
  ``{environment: {task: {algorithm: {"seed_S": {"step_K": {"step_count":
  env_steps, "return": [value], "episodes": [value]}, ...,
  "absolute_metrics": {"return": [deterministic evaluation return],
  "last_1000_episodes_return": [value]}}}}}``. Every metric is a list (here one
  value: a mean over episodes); ``step_K`` are the training-curve bins in
  order (``step_count`` = env steps at the bin's end) and ``absolute_metrics``
  is the final evaluation. Environment is ``"MPE"``; the task names the env and
  its variant (``spread``, ``spread_paper``, ``rover_tower``).
- ``fig2_<task>.png``: training return against episodes, mean over seeds with a
  ±1 std band, one line per row, as the paper's Fig. 2.
- ``fig8_spread3.png``: the Spread-3 dilemma tasks (``spread3_sep``, ``_mix``,
  ``_ful``) side by side, as the paper's Fig. 8, when their runs are given.
  MAMD-OP is MAAC on Sep and MAMD on Ful (Appendix D): those runs are named
  as both there ("MAAC = MAMD-OP", ``SAME_RUNS``), in the figure and the table.
- for the rows whose summaries carry ``decomposition`` (MAMT and its variants),
  drawn by ``rllib_mamt.plotting``: ``fig3_<task>.png``, each agent's KL to its
  old policy and D_ns,i over training (Fig. 3); ``fig4_<task>.png``, each
  agent's trust region δ_i over training, mean ± std over seeds (Fig. 4);
  ``fig5_<task>.png``, the coordination coefficients C_ij averaged over the
  last half of training, mean ± std over seeds (Fig. 5). On Rover-Tower that
  mean cannot show the pairs, which are redrawn every episode; for the rows
  whose summaries carry ``final_coordination`` (``paper_budget.py`` measures it
  at the end of a run) ``table10.md`` also lists C toward each row's partner
  against the other agents of its kind, and for the rows whose summaries carry
  ``coordination_history`` ``fig5_<task>_partner.png`` draws that contrast
  over training (solid: toward the partner, mean ± std over seeds; dashed:
  toward the others), one panel for the rovers and one for the towers.
  Where the summaries carry each agent's own return (``agents`` from training,
  ``checkpoint_eval`` on the final weights), ``table10.md``
  lists them per row and agent (``agent_returns``), on Spread-3 beside a
  scripted controller's (``spread3_scripted.py``, when played on the same
  episodes), and ``agents_<task>.png`` draws each agent's own training curve
  per row (the seeds recorded from their first episode).
- on the Spread-3 tasks, whose graph of who depends on whom is known
  (``rllib_mamt.envs.spread3.DEPENDENCY_GRAPHS``, the paper's Fig. 7),
  ``table10.md`` lists per row the finished critics' C on the graph's edges
  against off them, the C matrix, and each agent's δ_i over the last half of
  training (``graph_coordination``): whether the critic found the graph, and
  whether the decomposition gave the joined agents the tighter trust regions.
"""

import argparse
import glob
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import paper_budget  # noqa: E402
import run_summary  # noqa: E402

# Paper, Appendix H, Table 10: mean (std) over 5 seeds (3 for the revision's
# MAMT-Fixed / -Random / -WS / -PPO columns), per-agent episode return.
PAPER_TABLE10 = {
    "spread": {"MAAC": (-43.23, 0.76), "MA-PPO": (-42.29, 0.61), "MADDPG": (-43.33, 0.68),
               "LOLA": (-42.08, 1.23), "MAMT": (-38.06, 0.69), "MAMD": (-42.17, 1.05),
               "MAMT-Random": (-43.04, 0.88), "MAMT-Fixed": (-41.29, 0.73),
               "MAMT-WS": (-39.83, 0.72), "MAMT-PPO": (-39.65, 0.47)},
    "multiwalker": {"MAAC": (-30.16, 3.38), "MA-PPO": (-38.52, 4.22), "MADDPG": (-49.76, 3.97),
                    "MAMT": (-4.70, 4.38), "MAMD": (-4.92, 3.91), "MAMT-Random": (-30.52, 3.17),
                    "MAMT-Fixed": (-4.82, 3.14), "MAMT-WS": (-4.90, 4.86),
                    "MAMT-PPO": (-4.98, 4.05)},
    "rover_tower": {"MAAC": (121.79, 6.84), "MA-PPO": (120.36, 6.02), "MADDPG": (87.46, 6.50),
                    "MAMT": (145.95, 5.77), "MAMD": (127.80, 5.04),
                    "MAMT-Random": (115.11, 6.13), "MAMT-Fixed": (123.21, 5.87),
                    "MAMT-WS": (133.70, 6.22), "MAMT-PPO": (141.33, 5.95)},
    "pursuit": {"MAAC": (19.86, 1.19), "MA-PPO": (20.05, 1.20), "MADDPG": (5.05, 1.33),
                "MAMT": (25.62, 1.30), "MAMD": (22.30, 1.81), "MAMT-Random": (16.48, 1.33),
                "MAMT-Fixed": (21.54, 1.62), "MAMT-WS": (17.17, 2.89),
                "MAMT-PPO": (25.04, 1.68)},
}
ROW_ORDER = ["MAAC", "MA-PPO", "MADDPG", "LOLA", "MAMD", "MAMD-Code", "MAMD-OP", "MAMD-OP-Code",
             "MAMT", "MAMT-Code",
             "MAMT-LogStep", "MAMT-Fixed",
             "MAMT-Random", "MAMT-WS", "MAMT-PPO"]
SELF_COLLISION_PER_STEP = 1.0
#: Our rows that run one of the paper's algorithms at other settings (the
#: authors' code's trust-region scale; session 8's log-space δ step): their
#: "Paper" cell and paper gap are that algorithm's, labelled with its name.
PAPER_ROW_OF_VARIANT = {"MAMD-Code": "MAMD", "MAMT-Code": "MAMT", "MAMT-LogStep": "MAMT"}

#: Share of a run's episodes at its end over which ``final_slope`` fits the
#: curve, and the fewest episodes it fits: on a 50,000-episode Spread-3-Ful run
#: the slope over the last 3,000 has a standard error of ~0.5 per 1,000
#: episodes, larger than the rise it has to show (~0.3); over the last 10,000
#: it is ~0.08.
SLOPE_WINDOW_FRACTION = 0.2
SLOPE_WINDOW_MIN_EPISODES = 3000
#: Equal successive parts of a run over which ``window_slopes`` fits the
#: curve: whether the rise slows down toward the budget, not only how large
#: it is at the end.
SLOPE_PARTS = 5
#: Share of a run's episodes at its start over which ``early_return`` averages.
EARLY_FRACTION = 0.2

#: Fewest seeds of a row for a std, a bootstrap CI or a probability of
#: improvement: from one seed the bootstrap has nothing to resample and would
#: print a zero-width CI ("1.00 [1.00, 1.00]") that looks certain.
MIN_SEEDS_FOR_SPREAD = 2

#: Appendix D defines Fig. 8's MAMD-OP as MAAC on Spread-3-Sep (no trust
#: region) and as MAMD on Spread-3-Ful (equal trust regions); our configs of
#: those are the same (``trust_region_mode`` "none", "equal"), so the Fig. 8
#: plans run them once and the report names the row as both.
#: {task: {row that is run: [rows it also is]}}
SAME_RUNS = {"spread3_sep": {"MAAC": ["MAMD-OP", "MAMD-OP-Code"]},
             "spread3_ful": {"MAMD": ["MAMD-OP"], "MAMD-Code": ["MAMD-OP-Code"]}}


def task_name(summary):
    """The task a run belongs to: the env, plus its variant when not the default."""
    variant = summary.get("env_config", {}).get("variant", "mpe2")
    return summary["env"] if variant == "mpe2" else f"{summary['env']}_{variant}"


def paper_unit(summary, value):
    """``value`` (our unit) in the paper's unit: per-agent mean, minus the
    self-collision penalties on Spread's ``mpe2`` variant (DESIGN.md)."""
    per_agent = value / summary["n_agents"]
    if summary["env"] == "spread" and summary.get("env_config", {}).get("variant", "mpe2") == "mpe2":
        per_agent -= SELF_COLLISION_PER_STEP * summary.get("env_config", {}).get("max_cycles", 25)
    return per_agent


def summary_directories(sources, root=paper_budget.HERE):
    """The run-summary directories of ``sources``: directories as given; for a
    plan or campaign file, each of its plans' ``root/recorded/<plan>`` directory that
    holds a summary, in order, without repeats (the others are named on stdout),
    leaving out campaign stages marked ``"report": false``."""
    directories, seen = [], set()
    for source in sources:
        if os.path.isdir(source) or not source.endswith(".json"):
            candidates, required = [source], True
        else:
            candidates = [stage.out_dir for stage in paper_budget.load_stages(source, root)
                          if stage.report]
            required = False
        for directory in candidates:
            if directory in seen:
                continue
            seen.add(directory)
            if required or glob.glob(os.path.join(directory, "*", "seed_*.json")):
                directories.append(directory)
            else:
                print(f"{os.path.relpath(directory)}: no finished runs yet, passed over")
    return directories


def load_summaries(directories):
    """All run summaries under ``directories``, grouped as {task: {row: [summary]}};
    two summaries of one task, row and seed (e.g. a shorter diagnostic rerun
    beside the reported run) are refused rather than pooled as two seeds."""
    grouped, seen = {}, {}
    for directory in directories:
        paths = sorted(glob.glob(os.path.join(directory, "*", "seed_*.json")))
        if not paths:
            raise SystemExit(f"{directory}: no run summaries (ROW/seed_S.json) found")
        for path in paths:
            summary = run_summary.load(path)
            key = (task_name(summary), summary["row"], summary["seed"])
            if key in seen:
                raise SystemExit(f"{path}: task {key[0]}, row {key[1]}, seed {key[2]} is also "
                                 f"{seen[key]}; allowed: one summary per task, row and seed "
                                 "(leave a diagnostic stage out with \"report\": false)")
            seen[key] = path
            grouped.setdefault(key[0], {}).setdefault(summary["row"], []).append(summary)
    for rows in grouped.values():
        for summaries in rows.values():
            summaries.sort(key=lambda s: s["seed"])
    return {task: at_the_tasks_budget(task, rows) for task, rows in grouped.items()}


def at_the_tasks_budget(task, rows):
    """``rows`` without the runs shorter than the task's longest (a plan's
    ``episodes`` raised and its finished runs not yet extended): the last 1,000
    episodes and the first fifth are compared at one budget. The runs passed
    over are named on stdout; a row left without runs is dropped."""
    budget = max(s["episodes"] for summaries in rows.values() for s in summaries)
    kept = {}
    for row, summaries in rows.items():
        for summary in summaries:
            if summary["episodes"] < budget:
                print(f"{task} {row} seed {summary['seed']}: {summary['episodes']} episodes, "
                      f"the task's longest runs {budget}; passed over until extended")
        at_budget = [s for s in summaries if s["episodes"] == budget]
        if at_budget:
            kept[row] = at_budget
    return kept


def row_colour(row):
    """The colour of ``row`` in every figure: tab20's entry at the row's place
    in ``ROW_ORDER``, so a row keeps its colour across tasks and panels
    whichever other rows are drawn beside it; a row outside ``ROW_ORDER``
    takes one of tab20's remaining entries, by its name."""
    from rllib_mamt.plotting import colours

    palette = colours(20)
    if row in ROW_ORDER:
        return palette[ROW_ORDER.index(row)]
    spare = len(palette) - len(ROW_ORDER)
    return palette[len(ROW_ORDER) + sum(map(ord, row)) % spare]


def row_label(task, row, rows):
    """``row``'s name, with the rows of ``SAME_RUNS`` it also is on ``task``
    that were not run under their own name: "MAAC = MAMD-OP"."""
    return " = ".join([row] + [other for other in SAME_RUNS.get(task, {}).get(row, [])
                               if other not in rows])


def ordered(rows):
    """Rows in the paper's column order, unknown rows last (alphabetically)."""
    return sorted(rows, key=lambda r: (ROW_ORDER.index(r) if r in ROW_ORDER else len(ROW_ORDER), r))


def cell_statistics(rows, reps, seed):
    """Mean, std, IQM with CI per row and probability of improvement per row pair."""
    from rliable import library, metrics

    scores = {row: np.array([[s["last_1000_episodes_return"]] for s in summaries])
              for row, summaries in rows.items()}
    # rliable 1.2 on arch 7 also draws from numpy's global generator: its
    # random_state alone left the CIs varying from run to run.
    np.random.seed(seed)
    iqm, iqm_ci = library.get_interval_estimates(
        scores, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=reps,
        random_state=np.random.RandomState(seed))
    cells = {}
    for row, summaries in rows.items():
        values = scores[row][:, 0]
        evaluations = np.array([s["eval"]["return_mean"] for s in summaries])
        slopes = np.array([final_slope(s) for s in summaries])
        parts = [mean_and_std(part)
                 for part in np.array([window_slopes(s) for s in summaries]).T]
        early = np.array([early_return(s) for s in summaries])
        in_paper_unit = np.array([paper_unit(s, s["last_1000_episodes_return"]) for s in summaries])
        cells[row] = {
            "seeds": [s["seed"] for s in summaries],
            "last_1000_episodes_return": {"mean": float(values.mean()), "std": sample_std(values),
                                          "values": values.tolist()},
            "paper_unit": {"mean": float(in_paper_unit.mean()), "std": sample_std(in_paper_unit)},
            "iqm": float(iqm[row][0]),
            "iqm_ci95": ([float(iqm_ci[row][0][0]), float(iqm_ci[row][1][0])]
                         if len(summaries) >= MIN_SEEDS_FOR_SPREAD else None),
            "eval_return": {"mean": float(evaluations.mean()), "std": sample_std(evaluations)},
            "final_slope": mean_and_std(slopes),
            "window_slopes": {key: [part[key] for part in parts] for key in ("mean", "std")},
            "early_return": mean_and_std(early),
            "process_hours": sum(s.get("process_seconds", 0.0) for s in summaries) / 3600.0,
        }
    return cells, probability_of_improvement(scores, reps, seed)


def probability_of_improvement(scores, reps, seed):
    """rliable's probability of improvement with its 95 % stratified-bootstrap
    CI for every ordered pair of rows with ``MIN_SEEDS_FOR_SPREAD`` runs each:
    {"x,y": {"probability": P(x > y), "ci95": [low, high]}} from ``scores``
    {row: (runs, tasks) array}."""
    from rliable import library, metrics

    pairs = {f"{x},{y}": [scores[x], scores[y]] for x in scores for y in scores
             if x != y and min(len(scores[x]), len(scores[y])) >= MIN_SEEDS_FOR_SPREAD}
    if not pairs:
        return {}
    np.random.seed(seed)
    point, interval = library.get_interval_estimates(
        pairs, metrics.probability_of_improvement, reps=reps,
        random_state=np.random.RandomState(seed))
    return {pair: {"probability": float(point[pair]),
                   "ci95": np.ravel(interval[pair]).astype(float).tolist()}
            for pair in pairs}


def t_test_power(effect_size, seeds, alpha=0.05):
    """Power of a two-sided two-sample t-test at ``alpha`` with ``seeds`` per
    row (pooled variance) against a standardised gap ``effect_size``: the
    noncentral t's mass beyond either critical value (scipy's ``nct``, as
    statsmodels' ``TTestIndPower.power`` computes it). At large
    noncentrality scipy returns nan for the far tail, an underflow (its
    finite neighbours are below 1e-16); that tail is then counted as 0,
    which can only lower the power. statsmodels passes the nan on, and the
    search of :func:`seeds_for_power` then went past n = 2 (8 seeds for a
    gap of 9.85 stds)."""
    from scipy import stats

    degrees = 2 * seeds - 2
    noncentrality = abs(effect_size) * math.sqrt(seeds / 2.0)
    critical = stats.t.isf(alpha / 2.0, degrees)
    near_tail = stats.nct.sf(critical, degrees, noncentrality)
    if not math.isfinite(near_tail):
        raise ValueError(f"no t-test power for effect size {effect_size} with {seeds} seeds")
    far_tail = stats.nct.cdf(-critical, degrees, noncentrality)
    return float(near_tail + (far_tail if math.isfinite(far_tail) else 0.0))


def seeds_for_power(effect_size, alpha=0.05, power=0.8):
    """The smallest seeds per row n >= 2 at which a two-sided two-sample t-test
    at ``alpha`` (equal n, pooled variance) detects a standardised gap
    ``effect_size`` with probability ``power`` (:func:`t_test_power`),
    searched over integers (statsmodels' ``solve_power`` does not converge
    for large effects, where n is 2 or 3)."""

    def enough(n):
        return t_test_power(effect_size, n, alpha) >= power

    high = 2
    while not enough(high):
        high *= 2
    low = high // 2 if high > 2 else 1
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high


def paper_row(row):
    """The paper's Table 10 row that ``row`` is compared with."""
    return PAPER_ROW_OF_VARIANT.get(row, row)


def seeds_to_separate(rows, task, reference="MAAC", alpha=0.05, power=0.8):
    """Seeds per row that a two-sided two-sample t-test at ``alpha`` needs to
    tell each row from ``reference`` with probability ``power``, given our
    pooled seed std (``seeds_for_power``), for the gap we measured and for the
    paper's gap (its per-agent gap x n agents, our unit). Returns {row: {...}}
    for the rows with at least 2 seeds beside a reference with at least 2
    seeds, else {}."""
    if len(rows.get(reference, [])) < 2:
        return {}
    paper = PAPER_TABLE10.get(task.split("_paper")[0], {})
    base = np.array([s["last_1000_episodes_return"] for s in rows[reference]])
    needed = {}
    for row, summaries in rows.items():
        values = np.array([s["last_1000_episodes_return"] for s in summaries])
        if row == reference or len(values) < 2:
            continue
        pooled = math.sqrt(((len(values) - 1) * values.var(ddof=1) + (len(base) - 1)
                            * base.var(ddof=1)) / (len(values) + len(base) - 2))
        gaps = {"measured": float(values.mean() - base.mean())}
        if paper_row(row) in paper and reference in paper:
            gaps["paper"] = ((paper[paper_row(row)][0] - paper[reference][0])
                             * summaries[0]["n_agents"])
        entry = {"reference": reference, "pooled_std": pooled}
        for name, gap in gaps.items():
            entry[f"{name}_gap"] = gap
            entry[f"seeds_for_{name}_gap"] = (
                seeds_for_power(gap / pooled, alpha, power) if gap and pooled else None)
        needed[row] = entry
    return needed


def slope_window(last_episode):
    """Episodes at the end of a run of ``last_episode`` episodes over which
    ``final_slope`` fits: its last ``SLOPE_WINDOW_FRACTION``, at least
    ``SLOPE_WINDOW_MIN_EPISODES``."""
    return max(SLOPE_WINDOW_MIN_EPISODES, SLOPE_WINDOW_FRACTION * last_episode)


def curve_slope(curve, start, end):
    """Least-squares slope, per 1,000 episodes (our unit), of a binned
    training curve's bins that end in (``start``, ``end``]; NaN with fewer
    than two bins there."""
    episodes = np.asarray(curve["episodes"], dtype=float)
    returns = np.asarray(curve["return_mean"], dtype=float)
    inside = (episodes > start) & (episodes <= end)
    if inside.sum() < 2:
        return float("nan")
    return float(np.polyfit(episodes[inside] / 1000.0, returns[inside], 1)[0])


def final_slope(summary):
    """``curve_slope`` over a run's last ``slope_window`` episodes: how far
    the run is from flat at its budget (issue 14 asks for curves that
    flatten)."""
    last = summary["curve"]["episodes"][-1]
    return curve_slope(summary["curve"], last - slope_window(last), last)


def window_slopes(summary, parts=SLOPE_PARTS):
    """``curve_slope`` over each of ``parts`` equal successive parts of a run."""
    last = summary["curve"]["episodes"][-1]
    return [curve_slope(summary["curve"], last * part / parts, last * (part + 1) / parts)
            for part in range(parts)]


def early_return(summary, fraction=EARLY_FRACTION):
    """Mean training return over the first ``fraction`` of a run's episodes
    (the binned curve's bins that end inside it, each weighed by its
    episodes): the speed half of Fig. 8's claim that a wrong decomposition
    hurts "the convergence speed and performance". NaN if no bin ends inside."""
    return run_summary.first_episodes_mean(summary["curve"], fraction * summary["episodes"])


def cost(cells):
    """Runs and process-hours of a task: the sum of its cells' ``process_hours``
    (the runs' ``process_seconds``: one-thread processes, wall time of training
    and checkpointing from the start of each resumed piece)."""
    return {"runs": sum(len(cell["seeds"]) for cell in cells.values()),
            "process_hours": sum(cell["process_hours"] for cell in cells.values())}


def plus_minus(mean, std, seeds, sign=""):
    """"mean ± std" for a markdown cell, or the mean alone from fewer than
    ``MIN_SEEDS_FOR_SPREAD`` seeds (the table's seeds column says how many);
    "–" where there is no mean (None)."""
    if mean is None:
        return "–"
    text = f"{mean:{sign}.2f}"
    return f"{text} ± {std:.2f}" if seeds >= MIN_SEEDS_FOR_SPREAD else text


def mean_and_std(values):
    """``{"mean", "std"}`` over seeds, both None where the mean is NaN (a run
    too short for the quantity, e.g. a fifth with fewer than two curve bins
    has no slope), so the statistics stay comparable JSON."""
    mean = float(np.mean(values))
    if math.isnan(mean):
        return {"mean": None, "std": None}
    return {"mean": mean, "std": sample_std(values)}


def sample_std(values):
    """Standard deviation over seeds with ddof=1 (0 for a single seed)."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def partner_coordination(rows):
    """{row: {kind: (C toward the partner, C toward the others of its kind)}}, the
    mean over seeds and agents of each kind, for the rows whose every seed
    recorded ``final_coordination`` with a partner contrast (Rover-Tower)."""
    out = {}
    for row, summaries in rows.items():
        contrasts = [s.get("final_coordination", {}).get("partner_contrast") for s in summaries]
        if not all(contrasts):
            continue
        by_kind = {}
        for contrast in contrasts:
            for agent, pair in contrast.items():
                by_kind.setdefault(agent.rsplit("_", 1)[0], []).append(pair)
        out[row] = {kind: (sum(p for p, _ in pairs) / len(pairs),
                           sum(o for _, o in pairs) / len(pairs))
                    for kind, pairs in sorted(by_kind.items())}
    return out


def dependency_graph(task):
    """The known Markov random field of a Spread-3 task (Appendix D, Fig. 7) as
    a 0/1 matrix in agent order, or None for other tasks."""
    if not task.startswith("spread3_"):
        return None
    from rllib_mamt.envs.spread3 import DEPENDENCY_GRAPHS

    return DEPENDENCY_GRAPHS.get(task[len("spread3_"):])


def late_trust_regions(summary):
    """{agent: δ_i} averaged over the last half of a run's ``decomposition``
    records (Fig. 5's window, ``rllib_mamt.plotting.coordination_matrix``; inf
    for an agent without a trust region), or None without records."""
    from rllib_mamt.plotting import agent_ids, nested

    records = summary.get("decomposition") or []
    if not records:
        return None
    late = records[len(records) // 2:]
    return {agent: float(np.mean([nested(record, "learners", agent, "trust_region_delta",
                                         default=np.nan) for record in late]))
            for agent in agent_ids(records)}


def graph_coordination(task, rows):
    """On a Spread-3 task, per row whose every seed recorded ``final_coordination``:
    the mean over seeds of C (Eq. 5, row i: Q_i's dependence on agent j) on the
    known graph's edges and off them (None where the graph has none), the mean
    C matrix, and each agent's δ_i over the last half of training (None
    without ``decomposition``). The paper's dilemma (Appendix D) asks the
    decomposition to give the agents joined by an edge the tighter trust
    regions; this is the check against that known answer."""
    graph = dependency_graph(task)
    if graph is None:
        return {}
    edges = graph.astype(bool)
    off_edges = ~edges & ~np.eye(len(graph), dtype=bool)
    out = {}
    for row, summaries in rows.items():
        matrices = [np.asarray((s.get("final_coordination") or {}).get("coefficients", []), float)
                    for s in summaries]
        if not all(m.shape == graph.shape for m in matrices):
            continue
        mean = np.mean(matrices, axis=0)
        deltas = [late_trust_regions(s) for s in summaries]
        agents = summaries[0]["final_coordination"]["agents"]
        out[row] = {
            "edges": float(mean[edges].mean()) if edges.any() else None,
            "off_edges": float(mean[off_edges].mean()) if off_edges.any() else None,
            "coefficients": mean.tolist(),
            "agents": agents,
            "trust_regions": None if not all(deltas) else
            {agent: float(np.mean([d[agent] for d in deltas])) for agent in agents},
        }
    return out


#: Each agent's own return, as the summaries record it: (label, where it is).
AGENT_RETURN_MEASURES = (
    ("training, last 1,000 ep.", ("agents", "last_1000_episodes_return")),
    ("checkpoint, argmax", ("checkpoint_eval", "deterministic", "agent_return_mean")),
    ("checkpoint, drawn actions", ("checkpoint_eval", "stochastic", "agent_return_mean")),
)
#: ``spread3_scripted.py``'s record: a scripted controller's per-agent returns.
SCRIPTED_SPREAD3 = os.path.join(paper_budget.HERE, "recorded", "spread3_scripted.json")


def agent_returns(rows):
    """{row: {measure label: {"seeds": n, "mean": {agent: ...}, "std": {agent: ...}}}}
    over the seeds that recorded the measure (``AGENT_RETURN_MEASURES``), so
    that a task's rows can be compared agent by agent (Fig. 8's dilemma is a
    claim about which agents a trust region holds back)."""
    from rllib_mamt.plotting import nested

    out = {}
    for row, summaries in rows.items():
        for label, keys in AGENT_RETURN_MEASURES:
            values = [v for v in (nested(s, *keys) for s in summaries) if v]
            if not values:
                continue
            agents = sorted(values[0])
            out.setdefault(row, {})[label] = {
                "seeds": len(values),
                "mean": {a: float(np.mean([v[a] for v in values])) for a in agents},
                "std": {a: sample_std([v[a] for v in values]) for a in agents}}
    return out


def scripted_reference(task, rows, path=SCRIPTED_SPREAD3):
    """The scripted controller's per-agent returns on a Spread-3 task, when it
    was played on the same episodes (count and reset seed) as the rows'
    checkpoint measurements; else None."""
    if not task.startswith("spread3_") or not os.path.exists(path):
        return None
    with open(path) as handle:
        scripted = json.load(handle)
    settings = {(s["checkpoint_eval"]["episodes"], s["checkpoint_eval"]["seed"])
                for summaries in rows.values() for s in summaries if s.get("checkpoint_eval")}
    if settings != {(scripted["episodes"], scripted["seed"])}:
        return None
    return scripted["variants"].get(task[len("spread3_"):])


def format_optional(value):
    """``value`` to 3 decimals, or "–" for None."""
    return "–" if value is None else f"{value:.3f}"


def markdown(statistics):
    """The Table 10 comparison as markdown, one section per task."""
    lines = []
    for task, result in statistics.items():
        paper = PAPER_TABLE10.get(task.split("_paper")[0], {})
        lines += [f"### {task}", "",
                  f"{result['cost']['runs']} runs, {result['cost']['process_hours']:.1f} "
                  "process-hours (one torch thread each).", "",
                  "| Row | Paper (per agent) | Ours, last 1,000 ep. (sum over agents) | "
                  "Ours, paper's unit | IQM [95 % CI] | Deterministic eval | "
                  f"First {EARLY_FRACTION:.0%} of the episodes | "
                  f"Slope, last {SLOPE_WINDOW_FRACTION:.0%} of the episodes (at least "
                  f"{SLOPE_WINDOW_MIN_EPISODES:,}; per 1,000 ep.) | Seeds |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for row in ordered(result["cells"]):
            cell = result["cells"][row]
            paper_cell = "–"
            if paper_row(row) in paper:
                mean, std = paper[paper_row(row)]
                paper_cell = f"{mean:.2f} ± {std:.2f}" + (
                    f" ({paper_row(row)})" if paper_row(row) != row else "")
            metric, unit, evaluation, early, slope = (
                cell["last_1000_episodes_return"], cell["paper_unit"], cell["eval_return"],
                cell["early_return"], cell["final_slope"])
            seeds = len(cell["seeds"])
            interval = ("" if cell["iqm_ci95"] is None else
                        f" [{cell['iqm_ci95'][0]:.2f}, {cell['iqm_ci95'][1]:.2f}]")
            lines.append(
                f"| {row_label(task, row, result['cells'])} | {paper_cell} | "
                f"{plus_minus(metric['mean'], metric['std'], seeds)} | "
                f"{plus_minus(unit['mean'], unit['std'], seeds)} | {cell['iqm']:.2f}{interval} | "
                f"{plus_minus(evaluation['mean'], evaluation['std'], seeds)} | "
                f"{plus_minus(early['mean'], early['std'], seeds)} | "
                f"{plus_minus(slope['mean'], slope['std'], seeds, '+')} | {seeds} |")
        lines += ["", f"Slope of the training curve over each {1 / SLOPE_PARTS:.0%} of the "
                  "episodes, per 1,000 episodes (mean ± std over seeds): a curve that has "
                  "flattened ends near 0.", "",
                  "| Row | " + " | ".join(
                      f"{part / SLOPE_PARTS:.0%}–{(part + 1) / SLOPE_PARTS:.0%}"
                      for part in range(SLOPE_PARTS)) + " |",
                  "|---|" + "---|" * SLOPE_PARTS]
        for row in ordered(result["cells"]):
            parts = result["cells"][row]["window_slopes"]
            seeds = len(result["cells"][row]["seeds"])
            lines.append(f"| {row_label(task, row, result['cells'])} | " + " | ".join(
                plus_minus(mean, std, seeds, "+")
                for mean, std in zip(parts["mean"], parts["std"])) + " |")
        if result["probability_of_improvement"]:
            lines += ["", "Probability of improvement P(row > column) [95 % CI]:", ""]
            rows = ordered(result["cells"])
            lines += ["| | " + " | ".join(rows) + " |", "|---" * (len(rows) + 1) + "|"]
            for x in rows:
                entries = []
                for y in rows:
                    entry = result["probability_of_improvement"].get(f"{x},{y}")
                    entries.append("–" if entry is None else
                                   f"{entry['probability']:.2f} [{entry['ci95'][0]:.2f}, "
                                   f"{entry['ci95'][1]:.2f}]")
                lines.append(f"| {x} | " + " | ".join(entries) + " |")
        if result.get("seeds_to_separate"):
            lines += ["", "Seeds per row a two-sided two-sample t-test (α = 0.05, power 0.8) "
                      "needs to tell the row from MAAC, from our pooled seed std (our unit):", "",
                      "| Row | pooled std | gap to MAAC, ours | seeds for it | "
                      "paper's gap in our unit | seeds for it |", "|---|---|---|---|---|---|"]
            for row in ordered(result["seeds_to_separate"]):
                entry = result["seeds_to_separate"][row]
                paper_gap = entry.get("paper_gap")
                lines.append(
                    f"| {row} | {entry['pooled_std']:.2f} | {entry['measured_gap']:+.2f} | "
                    f"{entry['seeds_for_measured_gap'] or '–'} | "
                    + ("– | – |" if paper_gap is None else
                       f"{paper_gap:+.2f} | {entry['seeds_for_paper_gap'] or '–'} |"))
        if result.get("partner_coordination"):
            lines += ["", "C of the finished critics toward each row's partner, against the "
                      "other agents of the partner's kind (mean over seeds and agents; "
                      "the pairs are redrawn every episode; MAMT-Fixed and MAMT-Random: "
                      "the ablation's own C, which the critic does not set):", "",
                      "| Row | kind | toward the partner | toward the others |", "|---|---|---|---|"]
            for row in ordered(result["partner_coordination"]):
                for kind, (partner, others) in result["partner_coordination"][row].items():
                    lines.append(f"| {row} | {kind} | {partner:.3f} | {others:.3f} |")
        if result.get("graph_coordination"):
            lines += ["", "C of the finished critics (Eq. 5; mean over seeds) on the known "
                      "graph's edges (Fig. 7) and off them, the C matrix (row i: Q_i's "
                      "dependence on agent j), and each agent's δ_i over the last half of "
                      "training (∞: no trust region; MAMT-Fixed and MAMT-Random: the "
                      "ablation's own C):", "",
                      "| Row | C on edges | C off edges | C matrix | δ_i over the last half |",
                      "|---|---|---|---|---|"]
            for row in ordered(result["graph_coordination"]):
                entry = result["graph_coordination"][row]
                matrix = " / ".join(" ".join(f"{c:.2f}" for c in line)
                                    for line in entry["coefficients"])
                deltas = "–" if entry["trust_regions"] is None else ", ".join(
                    f"{agent} {'∞' if math.isinf(delta) else f'{delta:.2f}'}"
                    for agent, delta in entry["trust_regions"].items())
                lines.append(f"| {row} | {format_optional(entry['edges'])} | "
                             f"{format_optional(entry['off_edges'])} | {matrix} | {deltas} |")
        if result.get("agent_returns"):
            agents = sorted({agent for measures in result["agent_returns"].values()
                             for measure in measures.values() for agent in measure["mean"]})
            lines += ["", "Each agent's own return (mean ± std over the seeds that recorded "
                      "it): over the last 1,000 training episodes, and on the run's final "
                      "weights or last kept checkpoint (`checkpoint_eval`: the same "
                      "episodes for every run, argmax and drawn actions):", "",
                      "| Row | measure | seeds | " + " | ".join(agents) + " |",
                      "|---|---|---|" + "---|" * len(agents)]
            for row in ordered(result["agent_returns"]):
                for label, measure in result["agent_returns"][row].items():
                    lines.append(f"| {row} | {label} | {measure['seeds']} | " + " | ".join(
                        plus_minus(measure["mean"][a], measure["std"][a], measure["seeds"])
                        if a in measure["mean"] else "–" for a in agents) + " |")
            scripted = result.get("scripted_reference")
            if scripted:
                lines.append("| scripted controller (`spread3_scripted.py`) | same episodes "
                             "| – | " + " | ".join(
                                 f"{scripted['agent_return_mean'][a]:.2f}"
                                 if a in scripted["agent_return_mean"] else "–"
                                 for a in agents) + " |")
        lines.append("")
    return "\n".join(lines)


def marl_eval_json(grouped):
    """The runs in marl-eval's raw-experiment format (see the module docstring)."""
    data = {"MPE": {}}
    for task, rows in grouped.items():
        for row, summaries in rows.items():
            algorithm = data["MPE"].setdefault(task, {}).setdefault(row.replace(",", " "), {})
            for summary in summaries:
                curve = summary["curve"]
                run = {f"step_{k}": {"step_count": int(steps), "return": [float(value)],
                                     "episodes": [int(episodes)]}
                       for k, (steps, value, episodes) in enumerate(
                           zip(curve["env_steps"], curve["return_mean"], curve["episodes"]))}
                run["absolute_metrics"] = {
                    "return": [float(summary["eval"]["return_mean"])],
                    "last_1000_episodes_return": [float(summary["last_1000_episodes_return"])]}
                algorithm[f"seed_{summary['seed']}"] = run
    return data


def seed_count(count):
    """"1 seed", "3 seeds": a legend's count of runs."""
    return f"{count} seed" + ("" if count == 1 else "s")


def draw_curves(axes, task, rows):
    """Training return vs episodes on ``axes``, mean ± std over seeds per row."""
    for row in ordered(rows):
        summaries = rows[row]
        length = min(len(s["curve"]["episodes"]) for s in summaries)
        episodes = np.array(summaries[0]["curve"]["episodes"][:length])
        returns = np.array([s["curve"]["return_mean"][:length] for s in summaries])
        mean, std = returns.mean(axis=0), returns.std(axis=0)
        colour = row_colour(row)
        axes.plot(episodes, mean, color=colour,
                  label=f"{row_label(task, row, rows)} ({seed_count(len(summaries))})")
        axes.fill_between(episodes, mean - std, mean + std, color=colour, alpha=0.2)
    axes.set_xlabel("training episodes")
    axes.set_ylabel("training return (sum over agents)")
    axes.set_title(task)
    axes.legend(fontsize=8)


def plot_curves(task, rows, path):
    """Fig. 2 style: one task's training curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    draw_curves(axes, task, rows)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_dilemma(grouped, path):
    """Fig. 8 style: the Spread-3 dilemma tasks (Sep, Mix, Ful) side by side, if any."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [task for task in ("spread3_sep", "spread3_mix", "spread3_ful") if task in grouped]
    if not tasks:
        return None
    figure, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
    for axis, task in zip(axes[0], tasks):
        draw_curves(axis, task, grouped[task])
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def partner_history(summaries, kind):
    """[(episodes, C toward the partner, C toward the others)] per seed: each
    checkpoint's mean over the agents of ``kind`` (``rover``, ``tower``) of a
    row's ``coordination_history``."""
    trials = []
    for summary in summaries:
        episodes, partner, others = [], [], []
        for entry in summary["coordination_history"]:
            pairs = [pair for agent, pair in entry["partner_contrast"].items()
                     if agent.rsplit("_", 1)[0] == kind]
            if pairs:
                episodes.append(entry["episodes"])
                partner.append(np.mean([p for p, _ in pairs]))
                others.append(np.mean([o for _, o in pairs]))
        trials.append((np.asarray(episodes, float), np.asarray(partner), np.asarray(others)))
    return trials


def plot_partner_history(task, rows, path):
    """Fig. 5 read per row on Rover-Tower: C toward the row's partner (solid,
    mean ± std over seeds) and toward the others of its kind (dashed) against
    training episodes, one panel per kind, for the rows whose every seed
    recorded ``coordination_history``; the path, or None."""
    from rllib_mamt.plotting import mean_and_spread, plot_band, plt, save, shared_legend

    drawn = [row for row in ordered(rows) if all(s.get("coordination_history") for s in rows[row])]
    if not drawn:
        return None
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True, layout="constrained")
    for axis, kind in zip(axes, ("rover", "tower")):
        for row in drawn:
            colour = row_colour(row)
            trials = partner_history(rows[row], kind)
            plot_band(axis, [(e, p) for e, p, _ in trials], f"{row}: toward the partner", colour)
            others = mean_and_spread([(e, o) for e, _, o in trials])
            if others:
                axis.plot(others[0], others[1], color=colour, linestyle="--", linewidth=1.0,
                          label=f"{row}: toward the others")
        axis.set_title(f"{task}: C of each {kind} (per row's pairing)", fontsize=9)
        axis.set_xlabel("training episodes")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("C_ij")
    shared_legend(figure, axes)
    return save(figure, os.path.dirname(path), os.path.basename(path))


def plot_agent_curves(task, rows, path):
    """Each agent's own training return against episodes, one panel per agent,
    mean ± std over each row's seeds whose per-agent record starts at episode
    0 (summary key ``agents``); the path, or None if no seed has one."""
    from rllib_mamt.plotting import plot_band, plt, save, shared_legend

    drawn = {row: [s for s in rows[row] if run_summary.agents_from_start(s)]
             for row in ordered(rows)}
    drawn = {row: seeds for row, seeds in drawn.items() if seeds}
    if not drawn:
        return None
    agents = sorted({agent for seeds in drawn.values() for s in seeds
                     for agent in s["agents"]["curve"]})
    columns = min(4, len(agents))
    figure, axes = plt.subplots(math.ceil(len(agents) / columns), columns, squeeze=False,
                                figsize=(4 * columns, 3.5 * math.ceil(len(agents) / columns)),
                                sharey=True, layout="constrained")
    for axis, agent in zip(axes.ravel(), agents):
        for row, seeds in drawn.items():
            curves = [s["agents"]["curve"][agent] for s in seeds if agent in s["agents"]["curve"]]
            plot_band(axis, [(np.asarray(c["episodes"], float), np.asarray(c["return_mean"]))
                             for c in curves],
                      f"{row_label(task, row, rows)} ({seed_count(len(curves))})", row_colour(row))
        axis.set_title(f"{task}: {agent}", fontsize=9)
        axis.set_xlabel("training episodes")
        axis.grid(alpha=0.3)
    for axis in axes[:, 0]:
        axis.set_ylabel("the agent's own training return")
    for axis in axes.ravel()[len(agents):]:
        axis.set_visible(False)
    shared_legend(figure, axes)
    return save(figure, os.path.dirname(path), os.path.basename(path))


def plot_decomposition(task, rows, out_dir):
    """Figs. 3-5 of the rows whose every seed recorded ``decomposition``; the paths written."""
    from rllib_mamt.plot_runs import Group
    from rllib_mamt.plotting import coordination_heat_maps, per_agent_figure

    groups = [Group(parts=(row,), trials=[s["decomposition"] for s in rows[row]], legend=row)
              for row in ordered(rows)
              if all(s.get("decomposition") for s in rows[row])]
    if not groups:
        return []
    written = [
        per_agent_figure(groups, ["kl_to_old_policy", "non_stationarity"],
                         ["KL(pi_i || pi_i_old)", "D_ns,i"], out_dir, f"fig3_{task}.png"),
        per_agent_figure(groups, ["trust_region_delta"], ["trust region delta_i"], out_dir,
                         f"fig4_{task}.png", log_when_wide=True),
        coordination_heat_maps(groups, out_dir, f"fig5_{task}.png"),
    ]
    return [path for path in written if path]


def report(directories, out_dir, reps=2000, seed=0):
    """Writes table, statistics, marl-eval JSON and figures; returns the statistics."""
    grouped = load_summaries(directories)
    os.makedirs(out_dir, exist_ok=True)
    statistics = {}
    for task, rows in sorted(grouped.items()):
        cells, improvement = cell_statistics(rows, reps, seed)
        statistics[task] = {"cells": cells, "probability_of_improvement": improvement,
                            "seeds_to_separate": seeds_to_separate(rows, task),
                            "partner_coordination": partner_coordination(rows),
                            "graph_coordination": graph_coordination(task, rows),
                            "agent_returns": agent_returns(rows),
                            "scripted_reference": scripted_reference(task, rows),
                            "cost": cost(cells)}
        plot_curves(task, rows, os.path.join(out_dir, f"fig2_{task}.png"))
        plot_decomposition(task, rows, out_dir)
        plot_partner_history(task, rows, os.path.join(out_dir, f"fig5_{task}_partner.png"))
        plot_agent_curves(task, rows, os.path.join(out_dir, f"agents_{task}.png"))
    plot_dilemma(grouped, os.path.join(out_dir, "fig8_spread3.png"))
    with open(os.path.join(out_dir, "statistics.json"), "w") as handle:
        json.dump(statistics, handle, indent=1)
    with open(os.path.join(out_dir, "marl_eval.json"), "w") as handle:
        json.dump(marl_eval_json(grouped), handle, separators=(",", ":"))
    with open(os.path.join(out_dir, "table10.md"), "w") as handle:
        handle.write(markdown(statistics))
    return statistics


def main():
    """Command line: run-summary directories in, report files out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", help="directories holding ROW/seed_S.json, or "
                        "plan / campaign files (their benchmarks/recorded/<plan> directories)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "figures", "table10"))
    parser.add_argument("--root", default=paper_budget.HERE,
                        help="for plan / campaign files: the benchmarks/ directory whose "
                             "recorded/ holds their summaries (default: this checkout's)")
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap replications")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap random seed")
    args = parser.parse_args()
    directories = summary_directories(args.sources, os.path.abspath(args.root))
    report(directories, args.out, args.reps, args.seed)
    with open(os.path.join(args.out, "table10.md")) as handle:
        print(handle.read())


if __name__ == "__main__":
    main()

"""benchmarks/early_agent_returns.py on hand-built run summaries with known answers."""

import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))

import early_agent_returns  # noqa: E402
import run_summary  # noqa: E402

REFERENCE = {"agent_0": -14.5, "agent_1": -10.5, "agent_2": -14.5}


def binned(returns, width=100):
    return {"bin_episodes": width, "episodes": [width * (i + 1) for i in range(len(returns))],
            "env_steps": [25 * width * (i + 1) for i in range(len(returns))],
            "return_mean": list(returns)}


def write_run(directory, row, seed, independent, joined, from_episodes=0, total=None,
              deltas=None):
    """A Spread-3-Mix run whose agent 1 has the curve ``independent`` and
    agents 0 and 2 the curve ``joined`` (bins of 100 episodes); ``deltas``, a
    list of {agent: δ_i}, are its decomposition records every 100 episodes."""
    total = total if total is not None else [i + 2 * j for i, j in zip(independent, joined)]
    summary = {
        "format": run_summary.FORMAT, "row": row, "algorithm": row, "training": {},
        "env": "spread3_mix", "env_config": {}, "n_agents": 3, "seed": seed,
        "return_unit": run_summary.RETURN_UNIT, "curve": binned(total),
        "last_1000_episodes_return": float(np.mean(total)),
        "eval": {"episodes": 10, "return_mean": -40.0}, "episodes": 100 * len(total),
        "env_steps": 2500 * len(total), "training_iterations": len(total),
        "process_seconds": 1.0,
        "agents": {"from_episodes": from_episodes,
                   "curve": {"agent_0": binned(joined), "agent_1": binned(independent),
                             "agent_2": binned(joined)}}}
    if deltas is not None:
        summary["decomposition"] = [
            {"num_env_steps_sampled_lifetime": 2500 * (i + 1), "episodes": 100 * (i + 1),
             "learners": {agent: {"trust_region_delta": delta} for agent, delta in record.items()}}
            for i, record in enumerate(deltas)]
    path = os.path.join(directory, row, f"seed_{seed}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(summary, handle)


def test_the_first_bin_within_the_margin_of_the_scripted_controller_is_found():
    curve = binned([-30.0, -20.0, -12.0, -11.2, -10.0])
    assert early_agent_returns.episodes_to_reference(curve, 500, -10.5, 1.0) == 400
    assert early_agent_returns.episodes_to_reference(curve, 500, -10.5, 2.0) == 300
    assert early_agent_returns.episodes_to_reference(curve, 300, -10.5, 1.0) is None
    assert early_agent_returns.window_mean(curve, 200) == pytest.approx(-25.0)
    assert early_agent_returns.window_mean(curve, 50) is None


def test_first_episodes_mean_weighs_bins_by_their_episodes():
    curve = {"episodes": [80, 120, 200, 600], "return_mean": [-100.0, -50.0, -20.0, 0.0]}
    assert run_summary.first_episodes_mean(curve, 200) == pytest.approx(
        (80 * -100.0 + 40 * -50.0 + 80 * -20.0) / 200)
    assert np.isnan(run_summary.first_episodes_mean(curve, 79))


def test_rows_are_compared_agent_by_agent_on_runs_recorded_from_their_start(tmp_path):
    main, start = str(tmp_path / "main"), str(tmp_path / "start")
    slow, fast = [-30.0, -25.0, -20.0, -15.0, -11.0], [-30.0, -15.0, -11.0, -10.0, -10.0]
    joined = [-40.0, -35.0, -30.0, -25.0, -20.0]
    write_run(main, "MAMD-OP", 0, fast, joined)
    write_run(main, "MAMD-OP", 1, [-30.0, -20.0, -11.4, -10.0, -10.0], joined)
    write_run(main, "MAMD", 0, slow, joined, from_episodes=2000)  # resumed: no record from 0
    write_run(start, "MAMD", 0, slow, joined)
    write_run(main, "MAAC", 0, fast, joined, from_episodes=2000)
    runs = early_agent_returns.load_runs([main, start])
    started = early_agent_returns.started_runs(runs)
    assert {row: [s["agents"]["from_episodes"] for s in summaries]
            for row, summaries in started.items()} == {"MAMD": [0], "MAMD-OP": [0, 0]}
    result = early_agent_returns.compare(runs, 500, REFERENCE, 1.0)
    assert set(result["rows"]) == {"MAMD-OP", "MAMD"}  # MAAC has no record from its start
    operated = result["rows"]["MAMD-OP"]
    assert operated["seeds"] == [0, 1]
    assert operated["episodes_to_reference"]["agent_1"] == {
        "mean": 300.0, "std": 0.0, "n": 2, "reached": 2}
    assert operated["episodes_to_reference"]["agent_0"]["reached"] == 0
    assert result["rows"]["MAMD"]["episodes_to_reference"]["agent_1"]["mean"] == 500.0
    assert result["rows"]["MAMD"]["window_mean"]["agent_1"]["mean"] == pytest.approx(np.mean(slow))
    assert result["rerun_difference"] == [
        {"row": "MAMD", "seed": 0, "max_abs_difference": 0.0}]


def test_a_rerun_that_differs_from_its_first_run_is_reported(tmp_path):
    main, start = str(tmp_path / "main"), str(tmp_path / "start")
    curve = [-30.0, -20.0, -10.0]
    write_run(main, "MAAC", 2, curve, curve)
    write_run(start, "MAAC", 2, curve, curve, total=[-90.0, -61.5, -30.0])
    result = early_agent_returns.compare(early_agent_returns.load_runs([main, start]), 300,
                                         REFERENCE, 1.0)
    assert result["rerun_difference"][0]["max_abs_difference"] == pytest.approx(1.5)


def test_mix_graph_leaves_agent_1_independent_and_the_figure_is_drawn(tmp_path):
    from rllib_mamt.envs.spread3 import DEPENDENCY_GRAPHS

    groups = early_agent_returns.agent_groups(DEPENDENCY_GRAPHS["mix"], sorted(REFERENCE))
    assert groups == {"independent": ["agent_1"], "joined": ["agent_0", "agent_2"]}
    directory = str(tmp_path / "runs")
    write_run(directory, "MAMT", 0, [-30.0, -20.0], [-40.0, -30.0])
    path = early_agent_returns.plot(early_agent_returns.load_runs([directory]), 200, groups,
                                    REFERENCE, str(tmp_path / "figure" / "early.png"))
    assert os.path.getsize(path) > 0


@pytest.mark.parametrize("variant, group", [("sep", "independent"), ("ful", "joined")])
def test_sep_and_ful_have_one_agent_group_and_a_one_panel_figure(tmp_path, variant, group):
    from rllib_mamt.envs.spread3 import DEPENDENCY_GRAPHS

    groups = early_agent_returns.agent_groups(DEPENDENCY_GRAPHS[variant], sorted(REFERENCE))
    assert groups == {group: ["agent_0", "agent_1", "agent_2"]}
    directory = str(tmp_path / "runs")
    write_run(directory, "MAAC", 0, [-30.0, -20.0], [-40.0, -30.0])
    path = early_agent_returns.plot(early_agent_returns.load_runs([directory]), 200, groups,
                                    REFERENCE, str(tmp_path / "figure" / "early.png"),
                                    task=f"spread3_{variant}")
    assert os.path.getsize(path) > 0


def test_default_paths_follow_the_variant():
    assert early_agent_returns.default_directories("ful")[0].endswith(
        os.path.join("recorded", "fig8_spread3_ful"))
    assert early_agent_returns.default_directories("mix")[1].endswith("fig8_spread3_mix_start")
    assert early_agent_returns.default_out("sep").endswith("early_agent_returns_spread3_sep.json")
    assert early_agent_returns.default_figure("ful").endswith("early_agents_spread3_ful.png")


def test_default_directories_put_the_start_plan_before_the_variants_other_diagnostics(tmp_path):
    for name in ("fig8_spread3_mix", "fig8_spread3_mix_start", "fig8_spread3_mix_frozen_agent",
                 "fig8_spread3_ful_start"):
        (tmp_path / name).mkdir()
    assert early_agent_returns.default_directories("mix", str(tmp_path)) == [
        str(tmp_path / "fig8_spread3_mix"), str(tmp_path / "fig8_spread3_mix_start"),
        str(tmp_path / "fig8_spread3_mix_frozen_agent")]
    assert early_agent_returns.default_directories("sep", str(tmp_path)) == [
        str(tmp_path / "fig8_spread3_sep")]


def test_a_row_whose_independent_agent_is_slower_in_every_seed_loses_every_comparison(tmp_path):
    pytest.importorskip("rliable", reason="rliable is not installed (pip install -e .[bench])")
    from rllib_mamt.envs.spread3 import DEPENDENCY_GRAPHS

    directory = str(tmp_path / "runs")
    joined = [-40.0, -30.0]
    for seed in range(3):
        write_run(directory, "MAAC", seed, [-20.0 + seed, -12.0], joined)
        write_run(directory, "MAMD", seed, [-25.0 + seed, -16.0], joined)
    result = early_agent_returns.compare(early_agent_returns.load_runs([directory]), 200,
                                         REFERENCE, 1.0)
    groups = early_agent_returns.agent_groups(DEPENDENCY_GRAPHS["mix"], sorted(REFERENCE))
    improvement = early_agent_returns.group_improvement(result, groups, reps=200)
    assert improvement["independent"]["MAAC,MAMD"] == {"probability": 1.0, "ci95": [1.0, 1.0]}
    assert improvement["independent"]["MAMD,MAAC"]["probability"] == 0.0
    assert improvement["joined"]["MAAC,MAMD"]["probability"] == 0.5  # equal curves: ties


def test_the_first_agent_whose_learned_delta_falls_to_the_threshold_is_counted_per_group(
        tmp_path):
    from rllib_mamt.envs.spread3 import DEPENDENCY_GRAPHS

    directory = str(tmp_path / "runs")
    curve = [-30.0, -20.0, -15.0]

    def record(agent_0, agent_1, agent_2):
        return {"agent_0": agent_0, "agent_1": agent_1, "agent_2": agent_2}

    write_run(directory, "MAMT", 0, curve, curve,
              deltas=[record(1.0, 0.5, 1.5), record(1.2, 0.05, 1.75), record(0.01, 0.01, 2.98)])
    write_run(directory, "MAMT", 1, curve, curve,
              deltas=[record(0.9, 1.1, 1.0), record(0.08, 1.4, 1.52), record(0.01, 1.4, 1.59)])
    write_run(directory, "MAMT", 2, curve, curve,  # frozen only after the 200-episode window
              deltas=[record(1.0, 1.0, 1.0), record(0.9, 1.2, 0.9), record(0.01, 1.5, 1.49)])
    write_run(directory, "MAMD", 0, curve, curve, deltas=[record(1.0, 1.0, 1.0)] * 3)
    result = early_agent_returns.compare(early_agent_returns.load_runs([directory]), 200,
                                         REFERENCE, 1.0, frozen_below=0.1)
    firsts = [r["first_frozen"] for r in result["rows"]["MAMT"]["records"]]
    assert firsts == [{"agent": "agent_1", "episodes": 200, "delta": 0.05},
                      {"agent": "agent_0", "episodes": 200, "delta": 0.08}, None]
    groups = early_agent_returns.agent_groups(DEPENDENCY_GRAPHS["mix"], sorted(REFERENCE))
    assert early_agent_returns.frozen_counts(result, groups) == {
        "MAMT": {"independent": 1, "joined": 1, "none": 1}}
    result = early_agent_returns.compare(early_agent_returns.load_runs([directory]), 300,
                                         REFERENCE, 1.0, frozen_below=0.1)
    assert result["rows"]["MAMT"]["records"][2]["first_frozen"]["agent"] == "agent_0"
    assert early_agent_returns.frozen_counts(result, groups)["MAMT"]["none"] == 0

"""benchmarks/table10_report.py on synthetic run summaries with known answers."""

import json
import math
import os
import sys

import pytest

pytest.importorskip("rliable", reason="rliable is not installed (pip install -e .[bench])")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))

import paper_budget  # noqa: E402
import run_summary  # noqa: E402
import table10_report  # noqa: E402


def write_run(directory, row, seed, metric, env="spread", variant="mpe2", evaluation=None):
    """Writes one synthetic run summary whose every curve bin equals ``metric``."""
    curve = [(40, 40, 1000 * (i + 1), metric) for i in range(50)]
    summary = {
        "format": run_summary.FORMAT, "row": row, "algorithm": row.split("-")[0],
        "training": {}, "env": env, "env_config": {"variant": variant} if env == "spread" else {},
        "n_agents": 2 if env == "spread" else 8, "seed": seed,
        "return_unit": run_summary.RETURN_UNIT,
        "curve": run_summary.binned_curve(curve, 400),
        "last_1000_episodes_return": run_summary.last_episodes_mean(curve, 1000),
        "eval": {"episodes": 10, "return_mean": metric if evaluation is None else evaluation},
        "episodes": 2000, "env_steps": 50000, "training_iterations": 50, "process_seconds": 36.0,
    }
    path = os.path.join(directory, row, f"seed_{seed}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(summary, handle)


def write_plans(directory, names):
    """Writes a one-row (MAAC) Spread plan per name into ``directory``; returns it."""
    directory.mkdir(exist_ok=True)
    for name in names:
        (directory / f"{name}.json").write_text(json.dumps(
            {"env": "spread", "episodes": 80, "seeds": [0], "rows": {"MAAC": {"algorithm": "MAAC"}}}))
    return directory


@pytest.fixture
def spread_runs(tmp_path):
    directory = str(tmp_path / "runs")
    for seed in range(5):
        write_run(directory, "MAMT", seed, -70.0)
        write_run(directory, "MAAC", seed, -90.0 - seed)
        write_run(directory, "MAMD", seed, -85.0 - 2 * seed)
    return directory


@pytest.fixture
def statistics(spread_runs, tmp_path):
    return table10_report.report([spread_runs], str(tmp_path / "out"), reps=200)


def test_identical_seeds_give_a_zero_width_confidence_interval(statistics):
    cell = statistics["spread"]["cells"]["MAMT"]
    assert cell["iqm"] == pytest.approx(-70.0)
    assert cell["iqm_ci95"] == pytest.approx([-70.0, -70.0])
    assert cell["last_1000_episodes_return"]["std"] == 0.0


def test_mean_std_and_iqm_of_spread_seeds(statistics):
    cell = statistics["spread"]["cells"]["MAAC"]
    assert cell["last_1000_episodes_return"]["mean"] == pytest.approx(-92.0)
    assert cell["last_1000_episodes_return"]["std"] == pytest.approx(2.5 ** 0.5)
    assert cell["iqm"] == pytest.approx(-92.0)
    low, high = cell["iqm_ci95"]
    assert -94.0 <= low < -92.0 < high <= -90.0


def test_a_dominated_row_has_probability_of_improvement_zero(statistics):
    improvement = statistics["spread"]["probability_of_improvement"]
    assert improvement["MAMT,MAAC"]["probability"] == 1.0
    assert improvement["MAMT,MAAC"]["ci95"] == [1.0, 1.0]
    assert improvement["MAAC,MAMT"]["probability"] == 0.0
    assert 0.0 < improvement["MAMD,MAAC"]["probability"] < 1.0


def test_paper_unit_is_per_agent_minus_self_collisions_on_mpe2(tmp_path):
    ours, papers = str(tmp_path / "mpe2"), str(tmp_path / "paper")
    write_run(ours, "MAMT", 0, -28.0)
    write_run(papers, "MAMT", 0, -78.0, variant="paper")
    result = table10_report.report([ours, papers], str(tmp_path / "out"), reps=50)
    assert result["spread"]["cells"]["MAMT"]["paper_unit"]["mean"] == pytest.approx(-39.0)
    assert result["spread_paper"]["cells"]["MAMT"]["paper_unit"]["mean"] == pytest.approx(-39.0)


def test_marl_eval_json_has_the_raw_experiment_structure(statistics, tmp_path):
    with open(tmp_path / "out" / "marl_eval.json") as handle:
        data = json.load(handle)
    runs = data["MPE"]["spread"]["MAAC"]
    assert sorted(runs) == [f"seed_{s}" for s in range(5)]
    run = runs["seed_3"]
    steps = [key for key in run if key.startswith("step_")]
    assert len(steps) == 5 and run["step_0"]["step_count"] == 10000
    assert run["step_4"]["return"] == [-93.0]
    assert run["absolute_metrics"] == {"return": [-93.0], "last_1000_episodes_return": [-93.0]}


def test_table_sets_the_papers_number_beside_ours_and_draws_the_figure(statistics, tmp_path):
    table = (tmp_path / "out" / "table10.md").read_text()
    mamt = next(line for line in table.splitlines() if line.startswith("| MAMT |"))
    assert "-38.06 ± 0.69" in mamt and "-70.00 ± 0.00" in mamt
    assert (tmp_path / "out" / "fig2_spread.png").stat().st_size > 0
    assert "15 runs, 0.1" in table or "15 runs, 0.2" in table  # 15 runs x 36 s = 0.15 h
    assert statistics["spread"]["cost"] == {"runs": 15, "process_hours": pytest.approx(0.15)}


def test_a_summary_without_the_metric_is_rejected_with_the_key(tmp_path):
    directory = str(tmp_path / "runs")
    write_run(directory, "MAMT", 0, -70.0)
    add_to_summary(directory, "MAMT", 0, last_1000_episodes_return=float("nan"))
    with pytest.raises(ValueError, match="last_1000_episodes_return"):
        table10_report.report([directory], str(tmp_path / "out"), reps=50)


def test_rows_with_a_recorded_decomposition_get_figures_3_to_5(tmp_path):
    directory = str(tmp_path / "runs")
    for seed in range(2):
        write_run(directory, "MAAC", seed, -90.0, env="rover_tower")
        write_run(directory, "MAMT", seed, -70.0, env="rover_tower")
        path = os.path.join(directory, "MAMT", f"seed_{seed}.json")
        with open(path) as handle:
            summary = json.load(handle)
        summary["decomposition"] = [
            {"num_env_steps_sampled_lifetime": 1000 * step, "episodes": 10 * step, "learners": {
                agent: {"trust_region_delta": 0.1 * (k + 1) * step, "non_stationarity": 0.01,
                        "kl_to_old_policy": 0.02,
                        "coordination": {other: 0.5 for other in ("agent_0", "agent_1")
                                         if other != agent}}
                for k, agent in enumerate(("agent_0", "agent_1"))}}
            for step in range(1, 6)]
        with open(path, "w") as handle:
            json.dump(summary, handle)
    out = tmp_path / "out"
    table10_report.report([directory], str(out), reps=50)
    for figure in ("fig3_rover_tower.png", "fig4_rover_tower.png", "fig5_rover_tower.png"):
        assert (out / figure).stat().st_size > 0
    assert not (out / "fig4_spread.png").exists()


def test_seeds_needed_to_separate_a_row_from_maac_follow_the_pooled_std(statistics):
    mamd = statistics["spread"]["seeds_to_separate"]["MAMD"]
    # MAAC -90..-94 (mean -92, var 2.5), MAMD -85..-93 (mean -89, var 10): pooled std 2.5
    assert mamd["pooled_std"] == pytest.approx(2.5)
    assert mamd["measured_gap"] == pytest.approx(3.0)
    # t-test power at effect size 3 / 2.5 = 1.2: 0.763 with 11 seeds, 0.802 with 12
    # (the normal approximation 2 (1.960 + 0.842)^2 / 1.2^2 = 10.9 says 11)
    assert mamd["seeds_for_measured_gap"] == 12
    # the paper's MAMD - MAAC gap, 1.06 per agent, is 2.12 in our unit (2 agents)
    assert mamd["paper_gap"] == pytest.approx(2.12)
    assert statistics["spread"]["seeds_to_separate"]["MAMT"]["pooled_std"] > 0
    assert "MAAC" not in statistics["spread"]["seeds_to_separate"]


@pytest.mark.parametrize("effect_size, seeds", [(5.3, 3), (2.0, 6), (1.0, 17), (-1.0, 17)])
def test_seeds_for_power_is_the_smallest_n_a_t_test_needs(effect_size, seeds):
    from statsmodels.stats.power import TTestIndPower

    # a t-test with 2 seeds per row has 2 degrees of freedom: even a gap of 5.3
    # stds needs 3 (the normal approximation says 1)
    assert table10_report.seeds_for_power(effect_size) == seeds
    power = TTestIndPower().power
    assert power(abs(effect_size), seeds, 0.05) >= 0.8 > power(abs(effect_size), seeds - 1, 0.05)


@pytest.mark.parametrize("effect_size", [9.85, 20.0, 100.0])
def test_a_gap_of_many_stds_needs_two_seeds(effect_size):
    # statsmodels' power is nan here (the far tail underflows), which had the
    # search double n past 2: it said 8 seeds for Spread MADDPG's 9.85 stds
    assert table10_report.seeds_for_power(effect_size) == 2


def test_t_test_power_agrees_with_statsmodels_wherever_statsmodels_has_a_number():
    from statsmodels.stats.power import TTestIndPower

    compared = 0
    for effect_size in (0.3, 1.0, 2.0, 5.0, 9.85, 20.0):
        for seeds in (2, 3, 4, 8, 16):
            reference = float(TTestIndPower().power(effect_size, seeds, 0.05))
            ours = table10_report.t_test_power(effect_size, seeds)
            assert 0.0 <= ours <= 1.0
            if math.isfinite(reference):
                assert ours == pytest.approx(reference, abs=1e-9)
                compared += 1
    assert compared >= 20


def test_the_spread3_dilemma_tasks_share_one_figure_8(tmp_path):
    directory = str(tmp_path / "runs")
    for env in ("spread3_sep", "spread3_ful"):
        for seed in range(2):
            write_run(directory + env, "MAAC", seed, -90.0, env=env)
            write_run(directory + env, "MAMT", seed, -80.0, env=env)
    out = tmp_path / "out"
    table10_report.report([directory + "spread3_sep", directory + "spread3_ful"], str(out), reps=50)
    assert (out / "fig8_spread3.png").stat().st_size > 0
    assert "### spread3_sep" in (out / "table10.md").read_text()


def test_mamd_op_is_named_on_the_maac_run_of_sep_and_the_mamd_runs_of_ful(tmp_path):
    directory = str(tmp_path / "runs")
    for env in ("spread3_sep", "spread3_ful"):
        for seed in range(2):
            for row in ("MAAC", "MAMD", "MAMD-Code"):
                write_run(directory + env, row, seed, -90.0, env=env)
    write_run(directory + "spread3_ful", "MAMD-OP", 0, -80.0, env="spread3_ful")
    out = tmp_path / "out"
    table10_report.report([directory + "spread3_sep", directory + "spread3_ful"], str(out), reps=50)
    ful, sep = (out / "table10.md").read_text().split("### spread3_sep")
    assert "| MAAC = MAMD-OP = MAMD-OP-Code |" in sep and "| MAMD |" in sep
    # a MAMD-OP row that was run keeps its own line; MAMD-OP-Code still names MAMD-Code
    assert "| MAMD |" in ful and "| MAMD-OP |" in ful and "| MAMD-Code = MAMD-OP-Code |" in ful
    assert "| MAAC |" in ful


def test_the_fig8_plans_run_mamd_op_only_where_it_is_not_maac_or_mamd():
    from rllib_mamt import MAAC, MAMD

    modes = {"MAAC": MAAC.get_default_config().trust_region_mode,
             "MAMD": MAMD.get_default_config().trust_region_mode}
    assert modes == {"MAAC": "none", "MAMD": "equal"}
    plans = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "benchmarks", "plans")
    for task, same in table10_report.SAME_RUNS.items():
        with open(os.path.join(plans, f"fig8_{task}.json")) as handle:
            rows = json.load(handle)["rows"]
        for row, others in same.items():
            assert row in rows and not set(others) & set(rows), (task, row)
    with open(os.path.join(plans, "fig8_spread3_mix.json")) as handle:
        assert {"MAMD-OP", "MAMD-OP-Code"} <= set(json.load(handle)["rows"])


def test_a_campaign_reports_the_plans_with_finished_runs_and_names_the_others(
        spread_runs, tmp_path, capsys):
    plans = write_plans(tmp_path / "plans", ("done", "not_started"))
    recorded = tmp_path / "root" / "recorded"
    os.makedirs(recorded)
    os.rename(spread_runs, recorded / "done")
    campaign = tmp_path / "campaign.json"
    campaign.write_text(json.dumps({"campaign": [{"plan": str(plans / "done.json")},
                                                 {"plan": str(plans / "not_started.json")},
                                                 {"plan": str(plans / "not_started.json")},
                                                 {"plan": str(plans / "done.json")}]}))
    directories = table10_report.summary_directories([str(campaign)], str(tmp_path / "root"))
    assert directories == [str(recorded / "done")]
    assert capsys.readouterr().out.count("not_started: no finished runs yet, passed over") == 1
    with pytest.raises(SystemExit, match="no run summaries"):
        table10_report.load_summaries([str(recorded / "not_started")])


def test_a_campaign_stage_marked_report_false_is_run_but_not_reported(spread_runs, tmp_path):
    plans = write_plans(tmp_path / "plans", ("full", "start"))
    recorded = tmp_path / "root" / "recorded"
    os.makedirs(recorded)
    os.rename(spread_runs, recorded / "full")
    write_run(str(recorded / "start"), "MAAC", 0, -200.0)
    campaign = tmp_path / "campaign.json"
    campaign.write_text(json.dumps({"campaign": [
        {"plan": str(plans / "full.json")}, {"plan": str(plans / "start.json"), "report": False}]}))
    assert [stage.report for stage in paper_budget.load_campaign(str(campaign))] == [True, False]
    directories = table10_report.summary_directories([str(campaign)], str(tmp_path / "root"))
    assert directories == [str(recorded / "full")]
    with pytest.raises(SystemExit, match="row MAAC, seed 0 is also"):
        table10_report.load_summaries([str(recorded / "full"), str(recorded / "start")])


@pytest.mark.parametrize("stage, message", [
    ({"report": "no"}, "key 'report' is 'no'; allowed: true or false"),
    ({"reports": False}, "unknown key 'reports'"),
])
def test_a_bad_campaign_stage_key_is_named(tmp_path, stage, message):
    plan = write_plans(tmp_path, ("plan",)) / "plan.json"
    campaign = tmp_path / "campaign.json"
    campaign.write_text(json.dumps({"campaign": [dict({"plan": str(plan)}, **stage)]}))
    with pytest.raises(SystemExit, match=message):
        paper_budget.load_campaign(str(campaign))


def test_the_report_is_the_same_on_every_run(spread_runs, tmp_path):
    first = table10_report.report([spread_runs], str(tmp_path / "first"), reps=200)
    for attempt in range(4):
        again = table10_report.report([spread_runs], str(tmp_path / f"again{attempt}"), reps=200)
        assert again == first


def test_rover_tower_rows_report_c_toward_each_rows_partner(tmp_path):
    directory = str(tmp_path / "runs")
    contrasts = {0: {"rover_0": (0.4, 0.2), "tower_0": (0.1, 0.1)},
                 1: {"rover_0": (0.2, 0.2), "tower_0": (0.3, 0.1)}}
    for seed, contrast in contrasts.items():
        write_run(directory, "MAAC", seed, 100.0 + seed, env="rover_tower")
        path = os.path.join(directory, "MAAC", f"seed_{seed}.json")
        with open(path) as handle:
            summary = json.load(handle)
        summary["final_coordination"] = {"rows": 8, "agents": ["rover_0", "tower_0"],
                                         "coefficients": [[0, 1], [1, 0]],
                                         "partner_contrast": contrast}
        with open(path, "w") as handle:
            json.dump(summary, handle)
    write_run(directory, "MAMD", 0, 90.0, env="rover_tower")  # no final C: left out
    statistics = table10_report.report([directory], str(tmp_path / "out"), reps=50)
    partner = statistics["rover_tower"]["partner_coordination"]
    assert partner == {"MAAC": {"rover": pytest.approx((0.3, 0.2)),
                                "tower": pytest.approx((0.2, 0.1))}}
    with open(tmp_path / "out" / "table10.md") as handle:
        assert "| MAAC | rover | 0.300 | 0.200 |" in handle.read()


def test_partner_history_averages_each_kind_per_checkpoint_and_is_drawn(tmp_path):
    directory = str(tmp_path / "runs")
    history = [{"episodes": 400, "rows": 8,
                "partner_contrast": {"rover_0": [0.2, 0.2], "rover_1": [0.4, 0.2],
                                     "tower_0": [0.1, 0.1], "tower_1": [0.1, 0.3]}},
               {"episodes": 800, "rows": 8,
                "partner_contrast": {"rover_0": [0.6, 0.1], "rover_1": [0.8, 0.1],
                                     "tower_0": [0.2, 0.2], "tower_1": [0.2, 0.2]}}]
    for seed in (0, 1):
        write_run(directory, "MAMT", seed, 100.0, env="rover_tower")
        path = os.path.join(directory, "MAMT", f"seed_{seed}.json")
        with open(path) as handle:
            summary = json.load(handle)
        summary["coordination_history"] = history
        with open(path, "w") as handle:
            json.dump(summary, handle)
    write_run(directory, "MAAC", 0, 90.0, env="rover_tower")  # no history: not drawn
    summaries = table10_report.load_summaries([directory])["rover_tower"]
    (episodes, partner, others), _ = table10_report.partner_history(summaries["MAMT"], "rover")
    assert episodes.tolist() == [400, 800]
    assert partner == pytest.approx([0.3, 0.7]) and others == pytest.approx([0.2, 0.1])
    table10_report.report([directory], str(tmp_path / "out"), reps=50)
    assert os.path.getsize(tmp_path / "out" / "fig5_rover_tower_partner.png") > 0


def test_a_malformed_coordination_history_is_rejected_with_the_key(tmp_path):
    directory = str(tmp_path / "runs")
    write_run(directory, "MAMT", 0, 100.0, env="rover_tower")
    path = os.path.join(directory, "MAMT", "seed_0.json")
    with open(path) as handle:
        summary = json.load(handle)
    summary["coordination_history"] = [{"episodes": 400, "partner_contrast": {"rover_0": 0.3}}]
    with pytest.raises(ValueError, match="coordination_history"):
        run_summary.validate(summary, path)


def test_rows_at_other_settings_are_set_beside_the_papers_row_of_their_algorithm(tmp_path):
    directory = str(tmp_path / "runs")
    for seed in range(3):
        write_run(directory, "MAAC", seed, 300.0 + 10 * seed, env="rover_tower")
        write_run(directory, "MAMD-Code", seed, 320.0 + 10 * seed, env="rover_tower")
    statistics = table10_report.report([directory], str(tmp_path / "out"), reps=50)
    separate = statistics["rover_tower"]["seeds_to_separate"]["MAMD-Code"]
    assert separate["paper_gap"] == pytest.approx((127.80 - 121.79) * 8)
    with open(tmp_path / "out" / "table10.md") as handle:
        assert "| MAMD-Code | 127.80 ± 5.04 (MAMD) |" in handle.read()


def binned_curve_of(return_at, last_episode):
    """A 100-episode-bin training curve up to ``last_episode`` whose bin
    ending at episode e has the return ``return_at(e)``."""
    episodes = list(range(100, last_episode + 1, 100))
    return {"bin_episodes": 100, "episodes": episodes, "env_steps": [25 * e for e in episodes],
            "return_mean": [return_at(e) for e in episodes]}


def test_final_slope_is_the_rise_per_1000_episodes_over_the_last_3000(tmp_path):
    directory = str(tmp_path / "runs")
    write_run(directory, "MAAC", 0, -90.0)
    write_run(directory, "MAMD", 0, -80.0)
    path = os.path.join(directory, "MAAC", "seed_0.json")
    with open(path) as handle:
        summary = json.load(handle)
    summary["curve"] = binned_curve_of(
        lambda e: -90.0 + 0.012 * e if e > 7000 else -500.0 + 0.1 * e, 10000)
    with open(path, "w") as handle:
        json.dump(summary, handle)
    statistics = table10_report.report([directory], str(tmp_path / "out"), reps=50)
    cells = statistics["spread"]["cells"]
    assert cells["MAAC"]["final_slope"]["mean"] == pytest.approx(12.0)
    assert cells["MAMD"]["final_slope"]["mean"] == pytest.approx(0.0)
    with open(tmp_path / "out" / "table10.md") as handle:
        assert "| +12.00 | 1 |" in handle.read()


def test_a_row_keeps_its_colour_whichever_rows_are_drawn_beside_it():
    """Fig. 8's panels draw different rows (MAMD-Code on Mix only); MAMT's
    line must have one colour in both."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = {"curve": binned_curve_of(lambda e: -50.0, 1000)}
    figure, (left, right) = plt.subplots(1, 2)
    table10_report.draw_curves(left, "spread3_ful", {"MAAC": [run], "MAMT": [run]})
    table10_report.draw_curves(right, "spread3_mix",
                               {"MAAC": [run], "MAMD-Code": [run], "MAMT": [run]})
    colour = {axis: {line.get_label().split(" (")[0]: line.get_color() for line in axis.lines}
              for axis in (left, right)}
    plt.close(figure)
    assert colour[left]["MAMT"] == colour[right]["MAMT"]
    assert colour[right]["MAMT"] != colour[right]["MAMD-Code"]
    assert table10_report.row_colour("MAMT-Extra") not in [
        table10_report.row_colour(row) for row in table10_report.ROW_ORDER]


def test_window_slopes_give_the_rise_over_each_fifth_of_a_run(tmp_path):
    """A 10,000-episode run that gains 5, 4, 3, 2 and 1 per 1,000 episodes over
    its successive fifths: the report's slope-per-fifth table reads them back."""
    directory = str(tmp_path / "runs")
    write_run(directory, "MAAC", 0, -90.0)
    path = os.path.join(directory, "MAAC", "seed_0.json")
    with open(path) as handle:
        summary = json.load(handle)
    rates = [5.0, 4.0, 3.0, 2.0, 1.0]

    def return_at(episode):
        done = [min(max(episode - 2000 * part, 0), 2000) for part in range(5)]
        return -100.0 + sum(rate * episodes / 1000 for rate, episodes in zip(rates, done))

    summary["curve"] = binned_curve_of(return_at, 10000)
    with open(path, "w") as handle:
        json.dump(summary, handle)
    statistics = table10_report.report([directory], str(tmp_path / "out"), reps=50)
    assert statistics["spread"]["cells"]["MAAC"]["window_slopes"]["mean"] == pytest.approx(rates)
    with open(tmp_path / "out" / "table10.md") as handle:
        text = handle.read()
    assert "| Row | 0%–20% | 20%–40% | 40%–60% | 60%–80% | 80%–100% |" in text
    assert "| MAAC | +5.00 | +4.00 | +3.00 | +2.00 | +1.00 |" in text


def test_final_slope_of_a_long_run_fits_its_last_fifth_not_only_its_last_3000():
    """A 50,000-episode run that rises by 1 per 1,000 episodes from 40,000 to
    47,000 and then holds still: the last 3,000 alone read flat (0), its last
    fifth (10,000 episodes) reads the rise that is still there."""
    summary = {"curve": binned_curve_of(lambda e: -117.0 + 0.001 * min(max(e, 40000), 47000), 50000)}
    assert table10_report.slope_window(50000) == 10000
    assert table10_report.slope_window(10000) == 3000
    assert table10_report.final_slope(summary) > 0.5


def add_to_summary(directory, row, seed, **fields):
    path = os.path.join(directory, row, f"seed_{seed}.json")
    with open(path) as handle:
        summary = json.load(handle)
    summary.update(fields)
    with open(path, "w") as handle:
        json.dump(summary, handle)


def decomposition(deltas_by_episodes):
    return [{"num_env_steps_sampled_lifetime": 25 * episodes, "episodes": episodes, "learners": {agent: {"trust_region_delta": delta}
                                                for agent, delta in deltas.items()}}
            for episodes, deltas in deltas_by_episodes]


def test_spread3_rows_report_c_on_the_known_graph_and_the_late_trust_regions(tmp_path):
    directory = str(tmp_path / "runs")
    agents = ["agent_0", "agent_1", "agent_2"]
    # Mix's graph joins agent_0 and agent_2 (Appendix D, Fig. 7)
    matrices = {0: [[0, 0.1, 0.5], [0.2, 0, 0.2], [0.3, 0.1, 0]],
                1: [[0, 0.3, 0.3], [0.2, 0, 0.2], [0.5, 0.1, 0]]}
    late = {0: (0.5, 1.5, 1.0), 1: (0.7, 1.1, 1.2)}
    for seed in (0, 1):
        write_run(directory, "MAMT", seed, -40.0, env="spread3_mix")
        early = {agent: 9.0 for agent in agents}  # first half of training: left out
        add_to_summary(directory, "MAMT", seed,
                       final_coordination={"agents": agents, "coefficients": matrices[seed]},
                       decomposition=decomposition(
                           [(1000, early), (3000, dict(zip(agents, late[seed]))),
                            (4000, dict(zip(agents, late[seed])))]))
        write_run(directory, "MAAC", seed, -39.0, env="spread3_mix")
        add_to_summary(directory, "MAAC", seed,
                       final_coordination={"agents": agents, "coefficients": matrices[0]},
                       decomposition=decomposition(
                           [(4000, {a: float("inf") for a in reversed(agents)})]))
    write_run(directory, "MAMD", 0, -41.0, env="spread3_mix")  # no final C: left out
    statistics = table10_report.report([directory], str(tmp_path / "out"), reps=50)
    graph = statistics["spread3_mix"]["graph_coordination"]
    assert set(graph) == {"MAAC", "MAMT"}
    assert graph["MAMT"]["edges"] == pytest.approx(0.4)
    assert graph["MAMT"]["off_edges"] == pytest.approx(0.175)
    assert graph["MAMT"]["trust_regions"] == pytest.approx(
        {"agent_0": 0.6, "agent_1": 1.3, "agent_2": 1.1})
    table = (tmp_path / "out" / "table10.md").read_text()
    assert ("| MAMT | 0.400 | 0.175 | 0.00 0.20 0.40 / 0.20 0.00 0.20 / 0.40 0.10 0.00 | "
            "agent_0 0.60, agent_1 1.30, agent_2 1.10 |") in table
    # in the agents' order, whatever the learners' order in the records
    assert "| MAAC | 0.400 | 0.150 |" in table and "agent_0 ∞, agent_1 ∞, agent_2 ∞ |" in table


def test_the_graph_check_is_left_out_where_the_graph_has_no_edges_or_no_gaps(tmp_path):
    directory = str(tmp_path / "runs")
    for env in ("spread3_sep", "spread3_ful"):
        write_run(directory + env, "MAAC", 0, -40.0, env=env)
        add_to_summary(directory + env, "MAAC", 0, final_coordination={
            "agents": ["a", "b", "c"], "coefficients": [[0, 0.2, 0.4], [0.2, 0, 0.2], [0.2, 0.2, 0]]})
    statistics = table10_report.report([directory + "spread3_sep", directory + "spread3_ful"],
                                       str(tmp_path / "out"), reps=50)
    sep = statistics["spread3_sep"]["graph_coordination"]["MAAC"]
    ful = statistics["spread3_ful"]["graph_coordination"]["MAAC"]
    assert sep["edges"] is None and sep["off_edges"] == pytest.approx(0.2333, abs=1e-4)
    assert ful["off_edges"] is None and ful["edges"] == pytest.approx(0.2333, abs=1e-4)
    assert sep["trust_regions"] is None
    assert "spread" not in table10_report.graph_coordination("rover_tower", {}) and \
        table10_report.graph_coordination("rover_tower", {}) == {}


def test_fig8_rows_are_in_the_papers_order_mamd_op_between_mamd_and_mamt():
    assert table10_report.ordered(["MAMT", "MAMD-OP", "MAAC", "MAMD", "MAMD-OP-Code"]) == [
        "MAAC", "MAMD", "MAMD-OP", "MAMD-OP-Code", "MAMT"]


def agent_measure(episodes, deterministic, stochastic):
    """A ``checkpoint_eval`` entry with these per-agent returns (reset seed 0)."""
    return {"checkpoint_episodes": 2000, "episodes": episodes, "seed": 0,
            **{mode: {"return_mean": sum(values.values()), "agent_return_mean": values}
               for mode, values in (("deterministic", deterministic), ("stochastic", stochastic))}}


def test_each_agents_own_return_is_listed_per_row_beside_the_scripted_controller(tmp_path):
    """Fig. 8's dilemma is about which agent a trust region holds back: the
    report sets every row's per-agent returns side by side, and the scripted
    reference only when it played the same episodes."""
    directory = str(tmp_path / "runs")
    for seed, independent in ((0, -10.0), (1, -12.0)):
        write_run(directory, "MAMT", seed, -40.0, env="spread3_mix")
        add_to_summary(directory, "MAMT", seed, checkpoint_eval=agent_measure(
            100, {"agent_0": -15.0, "agent_1": independent, "agent_2": -15.0},
            {"agent_0": -16.0, "agent_1": independent - 1, "agent_2": -16.0}))
    write_run(directory, "MAAC", 0, -40.0, env="spread3_mix")
    add_to_summary(directory, "MAAC", 0, agents={
        "from_episodes": 0, "curve": {},
        "last_1000_episodes_return": {"agent_0": -14.0, "agent_1": -11.0, "agent_2": -14.0}})
    scripted = tmp_path / "scripted.json"
    scripted.write_text(json.dumps({"episodes": 100, "seed": 0, "variants": {"mix": {
        "return_mean": -39.0, "agent_return_mean": {"agent_0": -14.5, "agent_1": -10.5,
                                                    "agent_2": -14.5}}}}))
    rows = table10_report.load_summaries([directory])["spread3_mix"]
    returns = table10_report.agent_returns(rows)
    assert set(returns) == {"MAMT", "MAAC"}
    argmax = returns["MAMT"]["checkpoint, argmax"]
    assert argmax["seeds"] == 2 and argmax["mean"]["agent_1"] == -11.0
    assert argmax["std"]["agent_1"] == pytest.approx(2 ** 0.5)
    assert returns["MAMT"]["checkpoint, drawn actions"]["mean"]["agent_1"] == -12.0
    assert list(returns["MAAC"]) == ["training, last 1,000 ep."]
    reference = table10_report.scripted_reference("spread3_mix", rows, str(scripted))
    assert reference["agent_return_mean"]["agent_1"] == -10.5
    add_to_summary(directory, "MAMT", 1, checkpoint_eval=agent_measure(
        50, {"agent_0": -1.0, "agent_1": -1.0, "agent_2": -1.0},
        {"agent_0": -1.0, "agent_1": -1.0, "agent_2": -1.0}))
    rows = table10_report.load_summaries([directory])["spread3_mix"]
    assert table10_report.scripted_reference("spread3_mix", rows, str(scripted)) is None
    assert table10_report.scripted_reference("rover_tower", rows, str(scripted)) is None
    table10_report.report([directory], str(tmp_path / "out"), reps=50)
    table = (tmp_path / "out" / "table10.md").read_text()
    assert "| MAAC | training, last 1,000 ep. | 1 | -14.00 | -11.00 |" in table


def test_each_agents_training_curve_is_drawn_from_the_seeds_recorded_from_the_start(tmp_path):
    directory = str(tmp_path / "runs")
    curve = {"bin_episodes": 40, "episodes": [40, 80], "env_steps": [1000, 2000],
             "return_mean": [-20.0, -15.0]}
    for seed, start in ((0, 0), (1, 24000)):
        write_run(directory, "MAMT", seed, -40.0, env="spread3_mix")
        add_to_summary(directory, "MAMT", seed, agents={
            "from_episodes": start, "curve": {"agent_0": curve, "agent_1": curve}})
    rows = table10_report.load_summaries([directory])["spread3_mix"]
    path = table10_report.plot_agent_curves("spread3_mix", rows, str(tmp_path / "agents.png"))
    assert path and os.path.getsize(path) > 0
    del rows["MAMT"][0]  # only the seed whose record starts late
    assert table10_report.plot_agent_curves("spread3_mix", rows, str(tmp_path / "x.png")) is None


def test_early_return_averages_the_first_fifth_of_the_episodes_by_episodes():
    """Fig. 8's speed claim: bins of unequal width weigh by their episodes."""
    summary = {"episodes": 1000, "curve": {"episodes": [80, 120, 200, 600, 1000],
                                           "return_mean": [-100.0, -50.0, -20.0, 0.0, 0.0]}}
    assert table10_report.early_return(summary) == pytest.approx(
        (80 * -100.0 + 40 * -50.0 + 80 * -20.0) / 200)
    assert math.isnan(table10_report.early_return(dict(summary, episodes=300)))


def test_runs_shorter_than_the_tasks_longest_are_passed_over_until_extended(tmp_path, capsys):
    directory = str(tmp_path / "runs")
    for seed in range(2):
        write_run(directory, "MAAC", seed, -80.0)
    write_run(directory, "MAMD", 0, -60.0)
    add_to_summary(directory, "MAAC", 1, episodes=4000)
    add_to_summary(directory, "MAMD", 0, episodes=4000)
    rows = table10_report.load_summaries([directory])["spread"]
    assert {row: [s["seed"] for s in summaries] for row, summaries in rows.items()} == {
        "MAAC": [1], "MAMD": [0]}
    assert "spread MAAC seed 0: 2000 episodes, the task's longest runs 4000" in capsys.readouterr().out
    add_to_summary(directory, "MAMD", 0, episodes=2000)
    assert list(table10_report.load_summaries([directory])["spread"]) == ["MAAC"]


def test_a_one_seed_row_gets_no_spread_no_ci_and_no_probability_of_improvement(tmp_path):
    directory = str(tmp_path / "runs")
    write_run(directory, "MAAC", 0, -80.0)
    for seed in range(2):
        write_run(directory, "MAMD", seed, -60.0 - seed)
        write_run(directory, "MAMT", seed, -70.0 - seed)
    result = table10_report.report([directory], str(tmp_path / "out"), reps=50)["spread"]
    assert result["cells"]["MAAC"]["iqm_ci95"] is None
    assert result["cells"]["MAMD"]["iqm_ci95"] is not None
    assert sorted(result["probability_of_improvement"]) == ["MAMD,MAMT", "MAMT,MAMD"]
    table = (tmp_path / "out" / "table10.md").read_text()
    maac = next(line for line in table.splitlines() if line.startswith("| MAAC |"))
    assert maac.endswith("| -80.00 | -65.00 | -80.00 | -80.00 | -80.00 | +0.00 | 1 |")
    assert "-60.50 ± 0.71" in table


def test_a_run_too_short_for_an_end_slope_gets_none_not_nan(tmp_path):
    directory = str(tmp_path / "runs")
    write_run(directory, "MAAC", 0, -80.0)
    add_to_summary(directory, "MAAC", 0, curve=run_summary.binned_curve(
        [(40, 40, 1000 * (i + 1), -80.0) for i in range(10)], 400))
    statistics = table10_report.report([directory], str(tmp_path / "out"), reps=50)
    cell = statistics["spread"]["cells"]["MAAC"]
    assert cell["final_slope"] == {"mean": None, "std": None}
    json.dumps(statistics, allow_nan=False)
    with open(tmp_path / "out" / "table10.md") as handle:
        assert any(line.startswith("| MAAC |") and line.endswith("| – | 1 |")
                   for line in handle.read().splitlines())

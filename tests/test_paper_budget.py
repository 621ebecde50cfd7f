"""benchmarks/paper_budget.py and run_summary.py: skip, resume, atomic checkpoints, the metric."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))

import paper_budget  # noqa: E402
import run_summary  # noqa: E402

PLAN = {"env": "spread", "episodes": 80, "seeds": [0, 1],
        "rows": {"MAAC": {"algorithm": "MAAC"},
                 "MAMT-Fixed": {"algorithm": "MAMT", "training": {"trust_region_mode": "fixed_coef"}},
                 "MA-PPO": {"algorithm": "NOT_REGISTERED_PPO", "use_common": False}},
        "common": {"train_batch_size_per_learner": 64}}


class FakeAlgorithm:
    """Stands in for an Algorithm: ``save`` writes one file, or fails midway."""

    def __init__(self, payload, fail=False):
        self.payload, self.fail = payload, fail

    def save(self, path):
        os.makedirs(path)
        with open(os.path.join(path, "state"), "w") as handle:
            handle.write(self.payload)
        if self.fail:
            raise KeyboardInterrupt("killed mid-save")


def test_finished_runs_are_skipped(tmp_path):
    done = paper_budget.summary_path(str(tmp_path), "MAAC", 1)
    os.makedirs(os.path.dirname(done))
    with open(done, "w") as handle:
        json.dump({"episodes": 80, "training": {"train_batch_size_per_learner": 64}}, handle)
    pending = paper_budget.pending_runs(PLAN, str(tmp_path), ["MAAC", "MAMT-Fixed"])
    assert pending == [("MAAC", 0), ("MAMT-Fixed", 0), ("MAMT-Fixed", 1)]


def test_a_finished_run_is_extended_when_the_plan_asks_for_more_episodes(tmp_path):
    done = paper_budget.summary_path(str(tmp_path), "MAAC", 1)
    os.makedirs(os.path.dirname(done))
    with open(done, "w") as handle:
        json.dump({"episodes": 80, "training": {"train_batch_size_per_learner": 64}}, handle)
    assert paper_budget.pending_runs(PLAN, str(tmp_path), ["MAAC"]) == [("MAAC", 0)]
    longer = dict(PLAN, episodes=200)
    assert paper_budget.pending_runs(longer, str(tmp_path), ["MAAC"]) == [("MAAC", 0), ("MAAC", 1)]


def test_a_finished_run_trained_with_other_settings_stops_the_queue(tmp_path):
    """A summary from before a change of the plan or of its search's selection
    (the Spread MAMT seeds trained with the first search's pinned clip) must
    not count as done for the changed row."""
    done = paper_budget.summary_path(str(tmp_path), "MAMT-Fixed", 0)
    os.makedirs(os.path.dirname(done))
    with open(done, "w") as handle:
        json.dump({"episodes": 80,
                   "training": {"train_batch_size_per_learner": 64, "trust_region_mode": "fixed_coef",
                                "trust_region_bounds": [0.01, 1.0]}}, handle)
    with pytest.raises(SystemExit, match=r"trained with trust_region_bounds=\[0.01, 1.0\], but the "
                                         r"plan now gives row 'MAMT-Fixed' trust_region_bounds='<unset>'"):
        paper_budget.pending_runs(PLAN, str(tmp_path), ["MAMT-Fixed"])


def test_status_flags_a_run_trained_with_other_settings(tmp_path):
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(PLAN))
    stage = paper_budget.Stage(str(plan_path), rows=["MAAC", "MAMT-Fixed"],
                               out_dir=str(tmp_path / "out"), work_dir=str(tmp_path / "work"))
    for row, training in (("MAAC", {"train_batch_size_per_learner": 64}),
                          ("MAMT-Fixed", {"train_batch_size_per_learner": 64,
                                          "trust_region_mode": "learned"})):
        done = paper_budget.summary_path(stage.out_dir, row, 0)
        os.makedirs(os.path.dirname(done))
        with open(done, "w") as handle:
            json.dump({"episodes": 80, "training": training}, handle)
    checkpoint = os.path.join(paper_budget.run_dir(stage.work_dir, "MAMT-Fixed", 1), "checkpoint")
    os.makedirs(checkpoint)
    with open(os.path.join(checkpoint, "progress.json"), "w") as handle:
        json.dump({"episodes": 40, "training": paper_budget.training_settings(PLAN, "MAMT-Fixed")},
                  handle)
    assert paper_budget.run_state(stage, "MAAC", 0) == "done"
    stage.plan = dict(PLAN, episodes=200)
    assert paper_budget.run_state(stage, "MAAC", 0) == "to extend: its summary has 80 episodes"
    stage.plan = PLAN
    assert paper_budget.run_state(stage, "MAAC", 1) == "not started"
    assert paper_budget.run_state(stage, "MAMT-Fixed", 1) == "resumable at 40 episodes"
    flagged = paper_budget.run_state(stage, "MAMT-Fixed", 0)
    assert flagged.startswith("done; CONFLICT: ") and "trust_region_mode='learned'" in flagged


def test_unregistered_baselines_are_listed_as_skipped():
    ready, skipped = paper_budget.registered_rows(PLAN, list(PLAN["rows"]))
    assert ready == ["MAAC", "MAMT-Fixed"] and skipped == ["MA-PPO"]


def test_rows_get_common_settings_unless_they_opt_out():
    assert paper_budget.training_settings(PLAN, "MAMT-Fixed") == {
        "train_batch_size_per_learner": 64, "trust_region_mode": "fixed_coef"}
    assert paper_budget.training_settings(PLAN, "MA-PPO") == {}


def test_a_kill_during_a_save_keeps_the_previous_complete_checkpoint(tmp_path):
    directory = str(tmp_path)
    assert paper_budget.recover_checkpoint(directory) is None
    paper_budget.save_checkpoint(FakeAlgorithm("first"), {"episodes": 40}, directory)
    with pytest.raises(KeyboardInterrupt):
        paper_budget.save_checkpoint(FakeAlgorithm("second", fail=True), {"episodes": 80}, directory)
    checkpoint = paper_budget.recover_checkpoint(directory)
    with open(os.path.join(checkpoint, "state")) as handle:
        assert handle.read() == "first"
    with open(os.path.join(checkpoint, "progress.json")) as handle:
        assert json.load(handle)["episodes"] == 40
    assert sorted(os.listdir(directory)) == ["checkpoint"]


def test_a_kill_between_the_renames_recovers_the_old_checkpoint(tmp_path):
    directory = str(tmp_path)
    paper_budget.save_checkpoint(FakeAlgorithm("first"), {"episodes": 40}, directory)
    os.rename(os.path.join(directory, "checkpoint"), os.path.join(directory, "checkpoint.old"))
    checkpoint = paper_budget.recover_checkpoint(directory)
    with open(os.path.join(checkpoint, "state")) as handle:
        assert handle.read() == "first"


def test_bad_plan_names_the_key(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(dict(PLAN, episodes=0)))
    with pytest.raises(SystemExit, match="'episodes' is 0"):
        paper_budget.load_plan(str(path))


@pytest.mark.parametrize("change, message", [
    ({"checkpoint_every": 0}, "key 'checkpoint_every' is 0; allowed: an int >= 1"),
    ({"episodes_per_iteration": 2.5}, "key 'episodes_per_iteration' is 2.5"),
    ({"last_episodes": True}, "key 'last_episodes' is True"),
    ({"seeds": [0, 0]}, "key 'seeds' is \\[0, 0\\]; allowed: a non-empty list of distinct"),
    ({"seeds": [-1]}, "key 'seeds' is \\[-1\\]"),
    ({"seeds": []}, "key 'seeds' is \\[\\]"),
    ({"episode": 100}, "unknown key 'episode'"),
    ({"common": [1]}, "key 'common' is \\[1\\]; allowed: a dict"),
    ({"rows": {"MAAC": {"algorithm": "MAAC", "trainig": {}}}}, "row 'MAAC' has unknown key 'trainig'"),
])
def test_every_plan_key_is_checked_before_anything_runs(tmp_path, change, message):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(dict(PLAN, **change)))
    with pytest.raises(SystemExit, match=message):
        paper_budget.load_plan(str(path))


def test_the_shipped_plans_pass_the_check():
    plans = os.path.join(os.path.dirname(paper_budget.HERE), "benchmarks", "plans")
    for name in os.listdir(plans):
        with open(os.path.join(plans, name)) as handle:
            if "campaign" not in json.load(handle):
                paper_budget.load_plan(os.path.join(plans, name))


CURVE = [(40, 40, 1000, -100.0)] + [(40, 40, 1000 * (i + 1), -float(i)) for i in range(1, 11)]


def test_last_episodes_mean_counts_episodes_not_iterations():
    assert run_summary.last_episodes_mean(CURVE, 40) == -10.0
    assert run_summary.last_episodes_mean(CURVE, 60) == pytest.approx((40 * -10 + 20 * -9) / 60)
    assert run_summary.last_episodes_mean(CURVE, 10**6) == pytest.approx(
        (-100 + sum(-i for i in range(1, 11))) / 11)


def test_an_iteration_whose_mean_covers_fewer_episodes_weighs_less():
    curve = [(40, 4, 1000, -100.0), (4, 4, 1100, 0.0)]
    assert run_summary.last_episodes_mean(curve, 1000) == pytest.approx(-50.0)


def test_binned_curve_bins_by_episodes():
    binned = run_summary.binned_curve(CURVE, 80)
    assert binned["episodes"] == [80, 160, 240, 320, 400, 440]
    assert binned["return_mean"][0] == pytest.approx(-50.5)
    assert binned["return_mean"][-1] == -10.0


def test_each_agents_own_return_is_counted_over_the_same_episodes_as_the_total():
    """Agent means weigh like the total's, so they add up to it; an iteration
    without an agent's mean covers none of its episodes but still counts toward
    the window, so the episodes stay aligned."""
    agent_curve = [(40, 40, 1000, {"a": -10.0, "b": -1.0}),
                   (40, 40, 2000, {"a": -6.0, "b": -2.0}),
                   (40, 40, 3000, {"a": -2.0})]
    total = [(f, c, s, sum(means.values())) for f, c, s, means in agent_curve[:2]]
    entry = run_summary.agent_summary(agent_curve[:2], 0, 40, 80)
    assert entry["last_1000_episodes_return"] == {"a": -8.0, "b": -1.5}
    assert sum(entry["last_1000_episodes_return"].values()) == pytest.approx(
        run_summary.last_episodes_mean(total, 80))
    assert entry["curve"]["a"]["return_mean"] == [-10.0, -6.0]
    last = run_summary.agent_summary(agent_curve, 0, 40, 80)["last_1000_episodes_return"]
    assert last == {"a": -4.0, "b": -2.0}  # b's window is its one mean inside the last 80


def test_per_agent_returns_are_given_only_over_a_window_the_record_covers():
    """A run resumed from a checkpoint that predates the per-agent record has
    no per-agent last-1000 mean until the record covers 1,000 episodes."""
    agent_curve = [(40, 40, 1000 * i, {"a": -1.0}) for i in range(1, 4)]
    entry = run_summary.agent_summary(agent_curve, 24000, 40, 1000)
    assert entry["from_episodes"] == 24000
    assert "last_1000_episodes_return" not in entry
    assert run_summary.agent_returns({"agent_episode_returns_mean": {
        "a": -1, "b": float("nan")}}) == {"a": -1.0}
    assert run_summary.agent_returns({}) == {}


def test_decomposition_row_keeps_per_agent_trust_region_metrics_only():
    result = {"num_env_steps_sampled_lifetime": 3000, "env_runners": {"num_episodes_lifetime": 120},
              "learners": {"__all_modules__": {"num_env_steps_trained": 7},
                           "mamt_central": {"trd_loss": 0.5},
                           "agent_0": {"trust_region_delta": 0.3, "actor_loss": 1.0,
                                       "coordination": {"agent_1": 0.9}},
                           "agent_1": {"trust_region_delta": 2.0, "non_stationarity": 0.01,
                                       "delta_value_slope": 3e-6, "delta_drift_slope": 1e-6}}}
    row = run_summary.decomposition_row(result)
    assert row == {"num_env_steps_sampled_lifetime": 3000, "episodes": 120, "learners": {
        "agent_0": {"trust_region_delta": 0.3, "coordination": {"agent_1": 0.9}},
        "agent_1": {"trust_region_delta": 2.0, "non_stationarity": 0.01,
                    "delta_value_slope": 3e-6, "delta_drift_slope": 1e-6}}}
    maac = {"num_env_steps_sampled_lifetime": 3000, "env_runners": {"num_episodes_lifetime": 120},
            "learners": {"agent_0": {"actor_loss": 1.0}}}
    assert run_summary.decomposition_row(maac) is None


def test_a_summary_with_a_malformed_decomposition_is_rejected_with_the_key():
    summary = {"format": run_summary.FORMAT, "row": "MAMT", "algorithm": "MAMT", "env": "spread",
               "seed": 0, "n_agents": 2, "curve": {}, "last_1000_episodes_return": -50.0,
               "eval": {}, "episodes": 80, "return_unit": run_summary.RETURN_UNIT,
               "decomposition": [{"learners": {}}]}
    with pytest.raises(ValueError, match="'decomposition'"):
        run_summary.validate(summary)


TINY_RUN = {"episodes": 120, "seeds": [100], "bin_episodes": 40, "eval_episodes": 2,
            "last_episodes": 80, "checkpoint_eval_episodes": 3,
            "common": {"train_batch_size_per_learner": 32, "replay_buffer_capacity": 2000,
                       "actor_hidden_sizes": [16], "critic_hidden_dim": 16,
                       "num_steps_sampled_before_learning_starts": 100}}


def run_tiny_plan(tmp_path, row, algorithm, **plan_keys):
    """The summary of one tiny run of ``row`` (seed 100) by the orchestrator's
    subprocess command, on TINY_RUN updated with ``plan_keys``."""
    import subprocess

    repository = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    plan = dict(TINY_RUN, rows={row: {"algorithm": algorithm}}, **plan_keys)
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan))
    out_dir, work_dir = str(tmp_path / "out"), str(tmp_path / "work")
    environment = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=repository)
    subprocess.run([sys.executable, os.path.join(repository, "benchmarks", "paper_budget.py"),
                    str(plan_path), "--one", row, "100", "--out-dir", out_dir,
                    "--work-dir", work_dir], check=True, env=environment, cwd=repository,
                   timeout=600)
    return run_summary.load(paper_budget.summary_path(out_dir, row, 100))


def test_a_mamt_run_records_delta_and_coordination_for_figures_4_and_5(tmp_path):
    """End to end: one tiny MAMT run of the orchestrator's subprocess command."""
    summary = run_tiny_plan(tmp_path, "MAMT", "MAMT", env="spread", checkpoint_every=2,
                            decomposition_every=1)
    rows = summary["decomposition"]
    assert len(rows) == summary["training_iterations"]
    last = rows[-1]["learners"]
    assert sorted(last) == ["agent_0", "agent_1"]
    assert all(last[agent]["trust_region_delta"] > 0 for agent in last)
    assert set(last["agent_0"]["coordination"]) == {"agent_1"}
    final = summary["final_coordination"]  # the finished critic's C on replayed rows
    assert final["agents"] == ["agent_0", "agent_1"]
    assert len(final["coefficients"]) == 2 and final["coefficients"][0][0] == 0.0
    assert final["partner_contrast"] == {}  # Spread has no pairs
    assert "coordination_history" not in summary  # nor a history of them
    agents = summary["agents"]  # each agent's own return; they add up to the total
    assert agents["from_episodes"] == 0
    assert sum(agents["last_1000_episodes_return"].values()) == pytest.approx(
        summary["last_1000_episodes_return"])
    assert sorted(agents["curve"]) == ["agent_0", "agent_1"]
    assert len(agents["curve"]["agent_0"]["return_mean"]) == len(summary["curve"]["return_mean"])
    assert sum(summary["eval"]["agent_return_mean"].values()) == pytest.approx(
        summary["eval"]["return_mean"])
    measured = summary["checkpoint_eval"]  # on the final weights, saved at the end
    assert measured["checkpoint_episodes"] == summary["episodes"]
    assert measured["episodes"] == 3
    assert sum(measured["deterministic"]["agent_return_mean"].values()) == pytest.approx(
        measured["deterministic"]["return_mean"])


def test_a_run_resumed_from_a_checkpoint_without_per_agent_returns_records_them_from_there(
        tmp_path):
    """The live campaign's case: a checkpoint written before per-agent returns
    were recorded resumes, and the record starts at the resumed episode."""
    run_tiny_plan(tmp_path, "MAAC", "MAAC", env="spread", episodes=80, checkpoint_every=1)
    progress_path = os.path.join(paper_budget.run_dir(str(tmp_path / "work"), "MAAC", 100),
                                 "checkpoint", "progress.json")
    with open(progress_path) as handle:
        progress = json.load(handle)
    resumed_at = progress["episodes"]
    del progress["agent_curve"]
    with open(progress_path, "w") as handle:
        json.dump(progress, handle)
    summary = run_tiny_plan(tmp_path, "MAAC", "MAAC", env="spread", episodes=160,
                            checkpoint_every=1, last_episodes=120)
    agents = summary["agents"]
    assert agents["from_episodes"] == resumed_at > 0
    assert "last_1000_episodes_return" not in agents  # 80 episodes recorded, window 120
    assert agents["curve"]["agent_0"]["episodes"][-1] == summary["episodes"]


def test_a_resumed_run_repeats_the_uninterrupted_runs_curve(tmp_path):
    """Exact resume, end to end: a run stopped at 80 episodes and continued to
    160 trains on the episodes, and reaches the returns, of the same seed's
    run straight to 160."""
    for name in ("straight", "resumed"):
        (tmp_path / name).mkdir()
    straight = run_tiny_plan(tmp_path / "straight", "MAAC", "MAAC", env="spread", episodes=160,
                             checkpoint_every=1)
    run_tiny_plan(tmp_path / "resumed", "MAAC", "MAAC", env="spread", episodes=80,
                  checkpoint_every=1)
    resumed = run_tiny_plan(tmp_path / "resumed", "MAAC", "MAAC", env="spread", episodes=160,
                            checkpoint_every=1)
    assert resumed["episodes"] == straight["episodes"] == 160
    assert resumed["curve"] == straight["curve"]
    assert resumed["agents"]["curve"] == straight["agents"]["curve"]


def test_a_finished_runs_checkpoint_gets_each_agents_return_once(tmp_path, capsys):
    """Runs finished before per-agent returns were recorded get them from
    their kept checkpoint; a second pass with the same settings does nothing."""
    import checkpoint_agent_returns

    summary = run_tiny_plan(tmp_path, "MAAC", "MAAC", env="spread3_sep", checkpoint_every=1)
    stage = paper_budget.Stage(str(tmp_path / "plan.json"), out_dir=str(tmp_path / "out"),
                               work_dir=str(tmp_path / "work"))
    path = paper_budget.summary_path(stage.out_dir, "MAAC", 100)
    del summary["checkpoint_eval"]  # as a run finished before it was measured
    with open(path, "w") as handle:
        json.dump(summary, handle)
    assert len(checkpoint_agent_returns.measure_stage(stage, 3, 0)) == 1
    measured = run_summary.load(path)["checkpoint_eval"]
    assert measured["checkpoint_episodes"] == summary["episodes"]
    for mode in ("deterministic", "stochastic"):
        per_agent = measured[mode]["agent_return_mean"]
        assert sorted(per_agent) == ["agent_0", "agent_1", "agent_2"]
        assert all(value < 0 for value in per_agent.values())  # minus a distance, every step
        assert sum(per_agent.values()) == pytest.approx(measured[mode]["return_mean"])
    assert measured["deterministic"] != measured["stochastic"]
    assert checkpoint_agent_returns.measure_stage(stage, 3, 0) == []
    assert len(checkpoint_agent_returns.measure_stage(stage, 4, 0)) == 1


def test_a_rover_tower_run_records_c_toward_each_rows_partner_at_every_checkpoint(tmp_path):
    """End to end on a 2-pair Rover-Tower: the pairs are redrawn every episode,
    so Fig. 5 needs C read per row; one history entry per checkpoint."""
    summary = run_tiny_plan(tmp_path, "MAAC", "MAAC", env="rover_tower",
                            env_config={"n_pairs": 2}, checkpoint_every=1)
    history = summary["coordination_history"]
    assert len(history) == summary["training_iterations"]
    assert [entry["episodes"] for entry in history] == sorted(
        entry["episodes"] for entry in history)
    assert history[-1]["episodes"] == summary["episodes"]
    for entry in history:
        assert sorted(entry["partner_contrast"]) == ["rover_0", "rover_1", "tower_0", "tower_1"]
        assert all(0.0 <= c <= 1.0 for pair in entry["partner_contrast"].values() for c in pair)


def test_a_campaign_queues_its_plans_in_order_and_skips_finished_runs(tmp_path):
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(PLAN))
    other_path = tmp_path / "other.json"
    other_path.write_text(json.dumps(dict(PLAN, seeds=[7])))
    first = paper_budget.Stage(str(plan_path), ["MAMT-Fixed"], out_dir=str(tmp_path / "a"))
    second = paper_budget.Stage(str(other_path), ["MAAC", "MA-PPO"], out_dir=str(tmp_path / "b"))
    done = paper_budget.summary_path(first.out_dir, "MAMT-Fixed", 0)
    os.makedirs(os.path.dirname(done))
    with open(done, "w") as handle:
        json.dump({"episodes": 80, "training": paper_budget.training_settings(PLAN, "MAMT-Fixed")},
                  handle)
    queue = [(stage.plan_path, row, seed)
             for stage, row, seed in paper_budget.pending_queue([first, second])]
    assert queue == [(str(plan_path), "MAMT-Fixed", 1), (str(other_path), "MAAC", 7)]


def test_a_campaign_names_a_bad_stage(tmp_path):
    path = tmp_path / "campaign.json"
    path.write_text(json.dumps({"campaign": [{"rows": ["MAAC"]}]}))
    with pytest.raises(SystemExit, match="key 'campaign'"):
        paper_budget.load_campaign(str(path))
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(PLAN))
    with pytest.raises(SystemExit, match=r"rows \['MAMD'\] are not in the plan"):
        paper_budget.Stage(str(plan_path), ["MAMD"])


def test_the_issue14_campaign_names_existing_plans_and_rows():
    repository = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    stages = paper_budget.load_campaign(
        os.path.join(repository, "benchmarks", "plans", "issue14_campaign.json"))
    assert stages[0].rows == ["MAAC", "MAMD", "MAMT-LogStep"]
    assert stages[2].rows == ["MAMT"]
    assert stages[2].plan["rows"]["MAMT"]["training"]["trust_region_step"] == "mirror_descent"
    assert {os.path.basename(stage.plan_path) for stage in stages} >= {
        "table10_spread_paper_variant.json", "table10_rover_tower.json", "fig8_spread3_mix.json"}


def test_the_fig8_start_plan_runs_the_main_plans_rows_with_their_settings():
    """The first-5,000-episode runs are pooled with the 25,000-episode runs
    by row and seed (early_agent_returns.py), so a row must mean the same run."""
    plans = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "benchmarks", "plans")
    main = paper_budget.load_plan(os.path.join(plans, "fig8_spread3_mix.json"))
    start = paper_budget.load_plan(os.path.join(plans, "fig8_spread3_mix_start.json"))
    assert {"MAAC", "MAMD", "MAMD-OP", "MAMT"} <= set(start["rows"])
    for row in start["rows"]:
        assert paper_budget.training_settings(start, row) == \
            paper_budget.training_settings(main, row), row
        assert start["rows"][row]["algorithm"] == main["rows"][row]["algorithm"]
    for key in ("env", "env_config", "episodes_per_iteration", "bin_episodes"):
        assert start[key] == main[key], key


def test_rows_with_a_search_wait_for_its_summary_then_take_the_best_values(tmp_path, monkeypatch):
    monkeypatch.setattr(paper_budget, "REPOSITORY", str(tmp_path))
    plan = dict(PLAN, rows={"MAAC": {"algorithm": "MAAC"},
                            "MAMT": {"algorithm": "MAMT", "search": "search.json",
                                     "training": {"trust_region_mode": "learned"}}})
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan))
    stage = paper_budget.Stage(str(plan_path), out_dir=str(tmp_path / "out"))
    assert [row for _, row, _ in paper_budget.pending_queue([stage])] == ["MAAC", "MAAC"]
    with pytest.raises(SystemExit, match="search.json"):
        paper_budget.training_settings(plan, "MAMT")
    (tmp_path / "search.json").write_text(json.dumps({"best": {
        "settings": {"trust_region_bounds": [0.01, 100.0], "coordination_threshold": 0.02},
        "seed": 100, "return_last_1000_episodes": -70.0}}))
    assert [row for _, row, _ in paper_budget.pending_queue([stage])] == ["MAAC"] * 2 + ["MAMT"] * 2
    assert paper_budget.training_settings(plan, "MAMT") == {
        "train_batch_size_per_learner": 64, "trust_region_bounds": [0.01, 100.0],
        "coordination_threshold": 0.02, "trust_region_mode": "learned"}


def test_root_puts_a_campaigns_summaries_and_checkpoints_elsewhere(tmp_path):
    path = tmp_path / "campaign.json"
    path.write_text(json.dumps({"campaign": [
        {"plan": "benchmarks/plans/tiny_smoke.json", "rows": ["MAAC"]}]}))
    stage = paper_budget.load_campaign(str(path), root=str(tmp_path / "main"))[0]
    assert stage.out_dir == str(tmp_path / "main" / "recorded" / "tiny_smoke")
    assert stage.work_dir == str(tmp_path / "main" / "results" / "paper_budget" / "tiny_smoke")


def test_a_checkpoint_trained_with_other_settings_is_not_resumed(tmp_path, monkeypatch):
    import ray

    monkeypatch.setattr(ray, "init", lambda **kwargs: None)
    directory = paper_budget.run_dir(str(tmp_path / "work"), "MAMT-Fixed", 0)
    os.makedirs(directory)
    stale = dict(paper_budget.training_settings(PLAN, "MAMT-Fixed"), coordination_threshold=0.02)
    paper_budget.save_checkpoint(FakeAlgorithm("state"), {"episodes": 40, "training": stale},
                                 directory)
    with pytest.raises(SystemExit, match=r"trained with coordination_threshold=0.02, but the plan "
                                         r"now gives row 'MAMT-Fixed' coordination_threshold='<unset>'"):
        paper_budget.run_one(PLAN, "MAMT-Fixed", 0, str(tmp_path / "out"), str(tmp_path / "work"))


def test_a_one_seed_stage_gives_every_row_its_first_seed_before_any_row_its_others(tmp_path):
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(PLAN))
    first_seeds = paper_budget.Stage(str(plan_path), ["MAAC", "MAMT-Fixed"], seeds=[0],
                                     out_dir=str(tmp_path / "out"))
    all_seeds = paper_budget.Stage(str(plan_path), ["MAAC", "MAMT-Fixed"],
                                   out_dir=str(tmp_path / "out"))
    queue = [(row, seed) for _, row, seed in paper_budget.pending_queue([first_seeds, all_seeds])]
    assert queue == [("MAAC", 0), ("MAMT-Fixed", 0), ("MAAC", 1), ("MAMT-Fixed", 1)]


def test_a_stage_names_seeds_outside_its_plan(tmp_path):
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(PLAN))
    for seeds in ([5], []):
        with pytest.raises(SystemExit, match=r"seeds .* allowed: \[0, 1\]"):
            paper_budget.Stage(str(plan_path), ["MAAC"], seeds=seeds)
    campaign = tmp_path / "campaign.json"
    campaign.write_text(json.dumps({"campaign": [{"plan": str(plan_path), "seeds": [1]}]}))
    assert paper_budget.load_campaign(str(campaign))[0].seeds == [1]


def test_the_remaining_cost_scales_each_rows_measured_seconds_per_episode_by_the_episodes_left(
        tmp_path):
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(dict(PLAN, seeds=[0, 1, 2])))
    stage = paper_budget.Stage(str(plan_path), ["MAAC", "MAMT-Fixed"],
                               out_dir=str(tmp_path / "out"), work_dir=str(tmp_path / "work"))
    done = paper_budget.summary_path(stage.out_dir, "MAAC", 0)
    os.makedirs(os.path.dirname(done))
    with open(done, "w") as handle:
        json.dump({"episodes": 80, "process_seconds": 2 * 3600.0,
                   "training": paper_budget.training_settings(stage.plan, "MAAC")}, handle)
    checkpoint = os.path.join(paper_budget.run_dir(stage.work_dir, "MAAC", 1), "checkpoint")
    os.makedirs(checkpoint)
    with open(os.path.join(checkpoint, "progress.json"), "w") as handle:
        json.dump({"episodes": 60}, handle)
    queue = paper_budget.pending_queue([stage])
    hours, unmeasured = paper_budget.remaining_cost(queue)
    assert hours == pytest.approx(2.0 * 20 / 80 + 2.0)
    assert [(row, seed) for _, row, seed in unmeasured] == [
        ("MAMT-Fixed", 0), ("MAMT-Fixed", 1), ("MAMT-Fixed", 2)]


def test_a_run_another_process_trains_is_left_out_of_the_queue_and_cannot_be_started_twice(
        tmp_path, capsys):
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(dict(PLAN, seeds=[0])))
    stage = paper_budget.Stage(str(plan_path), ["MAAC"], out_dir=str(tmp_path / "out"),
                               work_dir=str(tmp_path / "work"))
    assert not paper_budget.is_running(stage.work_dir, "MAAC", 0)
    held = paper_budget.hold_run_lock(stage.work_dir, "MAAC", 0)
    try:
        assert paper_budget.is_running(stage.work_dir, "MAAC", 0)
        assert paper_budget.run_state(stage, "MAAC", 0) == "training now"
        with pytest.raises(SystemExit, match="MAAC seed 0 is already being trained"):
            paper_budget.hold_run_lock(stage.work_dir, "MAAC", 0)
        assert paper_budget.orchestrate([stage], jobs=2, poll_seconds=0.0) == 0
        out = capsys.readouterr().out
        assert "skipped plan.json MAAC seed 0: another process is training it" in out
    finally:
        held.close()
    assert not paper_budget.is_running(stage.work_dir, "MAAC", 0)
    assert paper_budget.run_state(stage, "MAAC", 0) == "not started"


def test_a_run_another_process_takes_after_the_queue_was_built_is_left_out_too(
        tmp_path, capsys, monkeypatch):
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(dict(PLAN, seeds=[0])))
    stage = paper_budget.Stage(str(plan_path), ["MAAC"], out_dir=str(tmp_path / "out"),
                               work_dir=str(tmp_path / "work"))
    held = []

    def next_run_while_another_process_takes_it(queue, deadline=None, now=None):
        held.append(paper_budget.hold_run_lock(stage.work_dir, "MAAC", 0))
        return 0

    monkeypatch.setattr(paper_budget, "next_run", next_run_while_another_process_takes_it)
    try:
        assert paper_budget.orchestrate([stage], jobs=1, poll_seconds=0.0) == 0
    finally:
        for lock in held:
            lock.close()
    out = capsys.readouterr().out
    assert "1 runs to do" in out
    assert "skipped plan.json MAAC seed 0: another process is training it" in out
    assert "started" not in out


def test_with_a_deadline_a_free_core_takes_the_first_run_that_ends_before_it(tmp_path):
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(dict(PLAN, seeds=[0, 1])))
    stage = paper_budget.Stage(str(plan_path), ["MAAC", "MAMT-Fixed"],
                               out_dir=str(tmp_path / "out"), work_dir=str(tmp_path / "work"))
    for row, hours in (("MAAC", 2.0), ("MAMT-Fixed", 0.5)):
        done = paper_budget.summary_path(stage.out_dir, row, 0)
        os.makedirs(os.path.dirname(done))
        with open(done, "w") as handle:
            json.dump({"episodes": 80, "process_seconds": hours * 3600.0,
                       "training": paper_budget.training_settings(stage.plan, row)}, handle)
    queue = paper_budget.pending_queue([stage])
    assert [row for _, row, _ in queue] == ["MAAC", "MAMT-Fixed"]
    now = paper_budget.datetime.datetime(2026, 11, 28, 1, 0)
    in_hours = lambda hours: now + paper_budget.datetime.timedelta(hours=hours)  # noqa: E731
    assert paper_budget.next_run(queue) == 0
    assert paper_budget.next_run(queue, in_hours(3.0), now) == 0
    assert paper_budget.next_run(queue, in_hours(1.0), now) == 1
    assert paper_budget.next_run(queue, in_hours(0.1), now) == 0
    checkpoint = os.path.join(paper_budget.run_dir(stage.work_dir, "MAAC", 1), "checkpoint")
    os.makedirs(checkpoint)
    with open(os.path.join(checkpoint, "progress.json"), "w") as handle:
        json.dump({"episodes": 60}, handle)
    assert paper_budget.next_run(queue, in_hours(1.0), now) == 0
    assert paper_budget.estimated_seconds_per_episode(stage, "MA-PPO") == pytest.approx(90.0)


def test_until_is_the_next_time_that_clock_shows_and_a_bad_value_is_named():
    now = paper_budget.datetime.datetime(2026, 11, 28, 23, 0)
    assert paper_budget.parse_deadline("23:30", now) == now.replace(minute=30)
    assert paper_budget.parse_deadline("03:10", now) == paper_budget.datetime.datetime(
        2026, 11, 29, 3, 10)
    assert paper_budget.parse_deadline("2026-11-30T01:00", now) == paper_budget.datetime.datetime(
        2026, 11, 30, 1, 0)
    with pytest.raises(SystemExit, match="--until is '25:00'; allowed: HH:MM"):
        paper_budget.parse_deadline("25:00", now)


def test_a_resumable_run_of_a_row_with_no_finished_seed_is_timed_by_its_own_checkpoint(tmp_path):
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(dict(PLAN, seeds=[0, 1])))
    stage = paper_budget.Stage(str(plan_path), ["MAAC"], out_dir=str(tmp_path / "out"),
                               work_dir=str(tmp_path / "work"))
    checkpoint = os.path.join(paper_budget.run_dir(stage.work_dir, "MAAC", 0), "checkpoint")
    os.makedirs(checkpoint)
    with open(os.path.join(checkpoint, "progress.json"), "w") as handle:
        json.dump({"episodes": 60, "process_seconds": 0.75 * 3600.0}, handle)
    assert paper_budget.estimated_hours(stage, "MAAC", 0) == pytest.approx(0.25)
    assert paper_budget.estimated_hours(stage, "MAAC", 1) is None
    queue = paper_budget.pending_queue([stage])
    assert [(row, seed) for _, row, seed in queue] == [("MAAC", 0), ("MAAC", 1)]
    now = paper_budget.datetime.datetime(2026, 11, 28, 1, 0)
    later = now + paper_budget.datetime.timedelta(hours=0.5)
    assert paper_budget.next_run(queue[1:] + queue[:1], later, now) == 1
    hours, unmeasured = paper_budget.remaining_cost(queue)
    assert hours == pytest.approx(0.25)
    assert [(row, seed) for _, row, seed in unmeasured] == [("MAAC", 1)]

"""rllib_mamt.tune_schedulers: ASHA's rung records survive a restore."""

import json
from types import SimpleNamespace

import pyarrow.fs
import pytest
from ray.tune.schedulers import AsyncHyperBandScheduler, TrialScheduler

from rllib_mamt.tune_schedulers import ResumableAsyncHyperBandScheduler, metric_history

TIME, METRIC = "env_runners/num_episodes_lifetime", "env_runners/episode_return_mean"


def fake_trial(tmp_path, trial_id, history):
    """A trial whose storage holds ``history`` [(episodes, return)] as Tune writes it."""
    directory = tmp_path / trial_id
    directory.mkdir()
    lines = [json.dumps({"env_runners": {"num_episodes_lifetime": e, "episode_return_mean": r}})
             for e, r in history]
    (directory / "result.json").write_text("\n".join(lines) + ("\n" if lines else ""))
    storage = SimpleNamespace(trial_fs_path=str(directory),
                              storage_filesystem=pyarrow.fs.LocalFileSystem())
    return SimpleNamespace(trial_id=trial_id, storage=storage)


def scheduler(cls):
    return cls(time_attr=TIME, metric=METRIC, mode="max", max_t=25000,
               grace_period=25000 / 6, reduction_factor=6, brackets=1)


@pytest.mark.parametrize("cls, expected", [
    (AsyncHyperBandScheduler, TrialScheduler.STOP),  # Tune's ASHA after a restore
    (ResumableAsyncHyperBandScheduler, TrialScheduler.CONTINUE),
])
def test_a_restored_trial_counts_at_the_rung_not_where_it_was_restored(tmp_path, cls, expected):
    asha = scheduler(cls)
    # trial 0 was at 12,000 episodes when the search stopped; it scored -123 at the rung
    early = fake_trial(tmp_path, "early", [(1000, -150.0), (4200, -123.0), (12000, -80.0)])
    asha.on_trial_add(None, early)
    assert asha.on_trial_result(None, early, {TIME: 12040, METRIC: -79.5}) == TrialScheduler.CONTINUE
    # a new trial reaches the rung with -81: better than -123 at the same point
    late = fake_trial(tmp_path, "late", [])
    asha.on_trial_add(None, late)
    assert asha.on_trial_result(None, late, {TIME: 4200, METRIC: -81.0}) == expected


def test_a_new_trial_worse_than_the_restored_ones_at_the_rung_is_still_cut(tmp_path):
    asha = scheduler(ResumableAsyncHyperBandScheduler)
    asha.on_trial_add(None, fake_trial(tmp_path, "a", [(4200, -90.0), (9000, -70.0)]))
    late = fake_trial(tmp_path, "late", [])
    asha.on_trial_add(None, late)
    assert asha.on_trial_result(None, late, {TIME: 4200, METRIC: -100.0}) == TrialScheduler.STOP


def test_metric_history_skips_a_line_being_written_and_sorts(tmp_path):
    trial = fake_trial(tmp_path, "t", [(2000, -2.0), (1000, -1.0)])
    with open(tmp_path / "t" / "result.json", "a") as handle:
        handle.write('{"env_runners": {"num_ep')
    assert metric_history(trial, TIME, METRIC) == [(1000.0, -1.0), (2000.0, -2.0)]
    assert metric_history(SimpleNamespace(trial_id="x", storage=None), TIME, METRIC) == []

    class Unnamed:  # Tune's storage of a trial whose directory is not named yet
        @property
        def trial_fs_path(self):
            raise RuntimeError("Should not access `trial_fs_path` without setting `trial_dir_name`")

    assert metric_history(SimpleNamespace(trial_id="y", storage=Unnamed()), TIME, METRIC) == []


def test_a_ray_without_ashas_rung_records_fails_at_construction(monkeypatch):
    original = AsyncHyperBandScheduler.__init__

    def renamed(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self._rung_records = self.__dict__.pop("_trial_info")

    monkeypatch.setattr(AsyncHyperBandScheduler, "__init__", renamed)
    with pytest.raises(RuntimeError, match=r"attributes \['_trial_info'\]"):
        scheduler(ResumableAsyncHyperBandScheduler)

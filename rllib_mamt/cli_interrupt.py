"""Ctrl-C during ``rllib train``: checkpoint every running trial, then stop.

Tune's own SIGINT handler ends the run at once and saves the experiment state,
so a resumed trial falls back to its last periodic checkpoint (or restarts).
:class:`CheckpointOnInterrupt` takes over the first SIGINT: it asks Tune for a
checkpoint of each running trial with that trial's next result (Tune callbacks
may set ``should_checkpoint`` in a result) and, once all are saved, calls Tune's
handler, which stops the run and leaves the trials unfinished for ``--resume``.
A second Ctrl-C stops at once.
"""

import signal
import threading

from ray.tune import Callback
from ray.tune.experiment import Trial
from ray.tune.result import SHOULD_CHECKPOINT

# Set when a run was interrupted (a module-level flag, because Tuner.restore
# brings back its own unpickled copies of the callbacks).
INTERRUPTED = threading.Event()


class CheckpointOnInterrupt(Callback):
    """Tune callback: on Ctrl-C, checkpoint running trials after their current iteration."""

    def __init__(self, print_fn=print):
        self._print = print_fn
        self.interrupted = False
        self._tune_handler = None
        self._to_save = None
        self._saving = set()
        self._stopping = False

    def on_step_begin(self, iteration, trials, **info):
        if self._tune_handler is None and threading.current_thread() is threading.main_thread():
            self._tune_handler = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._on_sigint)
        if self.interrupted and self._to_save is None:
            self._to_save = {t.trial_id for t in trials if t.status == Trial.RUNNING}
        if self._to_save is not None and not self._to_save:
            self._stop_run()

    def _on_sigint(self, signum, frame):
        if self.interrupted:
            INTERRUPTED.set()
            self._print("rllib: second interrupt: stopping now; --resume continues from the last "
                        "saved checkpoint", flush=True)
            self._stop_run()
            return
        self.interrupted = True
        INTERRUPTED.set()
        self._print("rllib: interrupted: saving a checkpoint of each running trial after its "
                    "current iteration (Ctrl-C again to stop at once)", flush=True)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self._to_save and trial.trial_id in self._to_save:
            result[SHOULD_CHECKPOINT] = True
            self._saving.add(trial.trial_id)

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        if self._to_save and trial.trial_id in self._saving:
            self._to_save.discard(trial.trial_id)
            if not self._to_save:
                self._stop_run()  # at once, before another result can be logged

    def on_trial_complete(self, iteration, trials, trial, **info):
        if self._to_save:
            self._to_save.discard(trial.trial_id)

    on_trial_error = on_trial_complete

    def _stop_run(self):
        if self._stopping:
            return
        self._stopping = True
        handler = self._tune_handler
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if callable(handler) and handler is not signal.default_int_handler:
            handler(signal.SIGINT, None)
        else:
            raise KeyboardInterrupt

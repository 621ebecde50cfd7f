"""Silences three Ray/RLlib notices that every MAMT run printed and no user can act on.

* ``RLModule(config=[RLModuleConfig object]) has been deprecated``: RLlib 2.60's
  own ``RLModule.__init__`` builds an ``RLModuleConfig`` for every module, so
  the notice appears although MAMT's modules use the keyword constructor.
* ``You are running MAMT on the new API stack!``: MAMT sets the API-stack flags
  explicitly (``MAMTConfig.__init__``); there is no old stack to fall back to.
* ``Install gputil for GPU system monitoring``: Tune's system monitor asks for
  an optional package on every trial; on CPU machines there is nothing to
  monitor (install ``gputil`` yourself for GPU utilisation metrics).

Each notice is silenced by its exact key or text, in every process that imports
``rllib_mamt`` (the driver and, through unpickling, EnvRunners and learners);
any other warning of Ray's still shows.
"""

import logging

from ray.util.debug import log_once

RLMODULE_CONFIG_NOTICE_KEY = "RLModule(config=[RLModuleConfig object])"
GPUTIL_NOTICE = "Install gputil for GPU system monitoring."
ALGORITHMS_ON_NEW_API_STACK = ("MAMT", "MAMD", "MAAC", "MADDPG")


class _DropMessage(logging.Filter):
    """Drops log records whose message is exactly ``message``."""

    def __init__(self, message: str):
        super().__init__()
        self.message = message

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self.message


def silence_unactionable_notices() -> None:
    """Marks RLlib's once-per-process notices as shown and filters Tune's gputil hint."""
    log_once(RLMODULE_CONFIG_NOTICE_KEY)
    for name in ALGORITHMS_ON_NEW_API_STACK:
        log_once(f"{name}_on_new_api_stack")
    tune_util_logger = logging.getLogger("ray.tune.utils.util")
    if not any(isinstance(f, _DropMessage) for f in tune_util_logger.filters):
        tune_util_logger.addFilter(_DropMessage(GPUTIL_NOTICE))

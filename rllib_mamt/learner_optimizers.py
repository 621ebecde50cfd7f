"""Adam optimisers as every learner of the package registers them."""

from typing import Dict, Optional

import torch


def fused_adam_available(params) -> Optional[bool]:
    """True where torch has a fused Adam kernel for ``params``' device (CUDA;
    CPU from torch 2.4, setup.py allows 2.2), else None (torch's default)."""
    device = next(iter(params)).device.type
    if device == "cuda" or (device == "cpu" and torch.__version__ >= "2.4"):
        return True
    return None


def register_adam_groups(learner, module_id, groups: Dict, adam_epsilon: float) -> None:
    """Registers one Adam (betas 0.9/0.999, fused where available) per
    ``{optimizer name: (params, lr)}`` group of ``module_id`` on ``learner``."""
    for name, (params, lr) in groups.items():
        learner.register_optimizer(
            module_id=module_id,
            optimizer_name=name,
            optimizer=torch.optim.Adam(
                params, betas=(0.9, 0.999), eps=adam_epsilon, fused=fused_adam_available(params)
            ),
            params=params,
            lr_or_lr_schedule=lr,
        )

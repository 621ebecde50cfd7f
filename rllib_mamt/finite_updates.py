"""One finiteness check per learner update, before any optimiser steps."""

import math
from typing import Dict

import torch


def require_finite_update(loss: torch.Tensor, gradient_norms: Dict) -> None:
    """Raises before any optimiser steps if ``loss`` or a gradient norm is
    not finite: one check per update instead of RLlib's per-parameter ones
    (which zero non-finite gradients and step on; here they stop the run)."""
    named = {"loss": loss.detach().reshape(())}
    named.update({
        f"gradient norm of optimizer {name!r} of module {module_id!r}": norm
        for (module_id, name), norm in gradient_norms.items() if norm is not None
    })
    values = torch.stack(list(named.values()))
    if bool(torch.isfinite(values).all()):
        return
    bad = ", ".join(
        f"{what} = {value}" for what, value in zip(named, values.tolist())
        if not math.isfinite(value)
    )
    raise FloatingPointError(
        f"Learner update produced non-finite values ({bad}); losses and "
        "gradients must be finite. Check the rewards and observations for "
        "non-finite or extreme values, or lower the learning rates."
    )

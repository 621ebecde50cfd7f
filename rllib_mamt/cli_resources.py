"""CPUs and GPUs a trial needs, and a local Ray instance big enough to run it.

Tune leaves a trial PENDING forever when its placement group does not fit the
cluster. The ``rllib`` command therefore asks RLlib for each trial's resource
request (``Algorithm.default_resource_request``: 1 main process + EnvRunners +
evaluation EnvRunners + learners) before starting Ray.

Policy: a local Ray instance started without ``--num-cpus`` gets as many
logical CPUs as the largest trial needs, even when that is more than the
machine's cores (the trial then runs oversubscribed, slower, and one line says
so). An explicit ``--num-cpus`` that is too small, or missing GPUs, is an error.
"""

import os
from typing import Dict, Iterable


class ResourceError(Exception):
    """A trial cannot be scheduled with the resources given on the command line."""


def trial_resources(config) -> Dict[str, float]:
    """CPUs and GPUs of one trial of ``config`` (an AlgorithmConfig), from RLlib."""
    request = config.algo_class.default_resource_request(config)
    return {key: float(request.required_resources.get(key, 0.0)) for key in ("CPU", "GPU")}


def largest_trial(configs: Iterable) -> Dict[str, float]:
    """Per resource, the most any single one of ``configs`` needs."""
    needs = {"CPU": 0.0, "GPU": 0.0}
    for config in configs:
        for key, value in trial_resources(config).items():
            needs[key] = max(needs[key], value)
    return needs


def machine_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _count(value: float) -> int:
    return int(value) if float(value).is_integer() else int(value) + 1


def start_ray(needs: Dict[str, float], ray_address=None, num_cpus=None, num_gpus=None) -> None:
    """Connects to ``ray_address`` or starts a local Ray that fits ``needs``.

    Raises:
        ResourceError: If an explicit ``num_cpus``/``num_gpus`` is too small.
    """
    import ray

    if ray.is_initialized():
        return
    cpus, gpus = _count(needs["CPU"]), _count(needs["GPU"])
    if ray_address:
        ray.init(address=ray_address, log_to_driver=False)
        available = ray.cluster_resources()
        if available.get("CPU", 0) < cpus or available.get("GPU", 0) < gpus:
            print(f"rllib: warning: a trial needs {cpus} CPUs and {gpus} GPUs; the cluster has "
                  f"{available.get('CPU', 0):g} CPUs and {available.get('GPU', 0):g} GPUs now "
                  "(trials wait PENDING until an autoscaler adds nodes)", flush=True)
        return
    if num_cpus is not None and num_cpus < cpus:
        raise ResourceError(f"a trial needs {cpus} CPUs, --num-cpus gives {num_cpus}; "
                            f"pass --num-cpus {cpus} or lower num_env_runners")
    if gpus and (num_gpus if num_gpus is not None else _detected_gpus()) < gpus:
        raise ResourceError(f"a trial needs {gpus} GPUs, this machine has "
                            f"{num_gpus if num_gpus is not None else _detected_gpus()}; "
                            "set num_gpus_per_learner to 0 or use --ray-address")
    if num_cpus is None:
        num_cpus = machine_cpus()
        if cpus > num_cpus:
            print(f"rllib: a trial needs {cpus} CPUs, this machine has {num_cpus}: starting Ray "
                  f"with {cpus} logical CPUs (oversubscribed; pass --num-cpus to choose)", flush=True)
            num_cpus = cpus
    ray.init(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False, log_to_driver=False)


def _detected_gpus() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except ImportError:
        return 0

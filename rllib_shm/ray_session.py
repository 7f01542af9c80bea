"""Starting or joining Ray the same way from every entry point."""

from __future__ import annotations

import os


def ensure_ray() -> bool:
    """Connect to Ray; returns True when this call started (and so must stop) a local instance.

    Inside a Ray job or with ``RAY_ADDRESS`` set, join that cluster and inherit its runtime env
    (a job's runtime env must not be redefined by the driver). Otherwise start a local instance
    whose workers get ``OMP_NUM_THREADS`` (default 1: small machines slow down ~10× without it).
    """
    import ray

    if ray.is_initialized():
        return False
    if os.environ.get("RAY_ADDRESS") or os.environ.get("RAY_JOB_ID"):
        ray.init(log_to_driver=False)
        return False
    ray.init(include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}})
    return True

"""Starting or joining Ray the same way from every entry point."""

from __future__ import annotations

import os
import socket

CONNECT_TIMEOUT_S = 10.0


def ensure_ray() -> bool:
    """Connect to Ray; returns True when this call started (and so must stop) a local instance.

    Inside a Ray job or with ``RAY_ADDRESS`` set, join that cluster and inherit its runtime env
    (a job's runtime env must not be redefined by the driver); the address is probed first (a TCP
    connection, ``CONNECT_TIMEOUT_S``), since ``ray.init`` waits for minutes on an address nobody
    answers, e.g. a ``RAY_ADDRESS`` left exported after a ``ray job submit``: ValueError naming it.
    Otherwise start a local instance whose workers get ``OMP_NUM_THREADS`` (default 1: small machines
    slow down ~10× without it).
    """
    import ray

    if ray.is_initialized():
        return False
    address = os.environ.get("RAY_ADDRESS")
    if address or os.environ.get("RAY_JOB_ID"):
        check_ray_address()
        try:
            ray.init(log_to_driver=False)
        except ConnectionError as error:
            raise ValueError(f"cannot join the Ray cluster at RAY_ADDRESS={address!r}: {error} (unset RAY_ADDRESS to "
                             "start a local Ray instance)") from None
        return False
    ray.init(include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}})
    return True


def check_ray_address(timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """ValueError naming ``RAY_ADDRESS`` when it is set and its host:port (``ray://`` or ``http://``
    prefix allowed) does not accept a TCP connection within ``timeout_s``; ``auto`` and ``local`` are
    left to Ray. The drivers call it with their other checks, before anything is written."""
    address = os.environ.get("RAY_ADDRESS")
    if not address or address in ("auto", "local"):
        return
    host_port = address.split("://", 1)[-1].rstrip("/")
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"RAY_ADDRESS={address!r}: expected host:port (or ray://host:port, or auto)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as error:
        raise ValueError(f"RAY_ADDRESS={address!r}: no Ray cluster answers there ({error.strerror or error}); unset "
                         "RAY_ADDRESS to start a local Ray instance, or start the cluster") from None

"""The security check of aptio on Ray: Ray's token authentication must be on (a cluster
without it lets anyone who reaches it run code in every process of it), unless the user
accepted the risk explicitly."""

from __future__ import annotations

from typing import Final

import ray

from .._values.errors import AptioError

__all__ = ["InsecureClusterError", "check_cluster", "insecure_allowed",
           "note_insecure_allowed"]

#: The first Ray release whose local clusters turn token authentication on by default.
MIN_RAY: Final = (2, 59)

#: Whether this process accepted a cluster without token authentication (a server started
#: with ``allow_insecure_cluster=True``, or a proxy received from a process that did).
_insecure_allowed = False


def insecure_allowed() -> bool:
    return _insecure_allowed


def note_insecure_allowed() -> None:
    global _insecure_allowed
    _insecure_allowed = True


class InsecureClusterError(AptioError):
    """Raised when an aptio server would start on a Ray cluster that does not check Ray's
    authentication token (or on a Ray too old to have one): anyone who reaches such a cluster
    can run code in every process of it. Turn token authentication on (``RAY_AUTH_MODE=token``
    with a token on every node), or pass ``allow_insecure_cluster=True`` to accept that."""


def check_cluster(allow_insecure_cluster: bool) -> None:
    """Refuse a Ray too old for token authentication, or a cluster with it off (unless
    allowed). Ray must be initialized."""
    version = tuple(int(part) for part in ray.__version__.split(".")[:2] if part.isdigit())
    if version < MIN_RAY:
        if allow_insecure_cluster:
            return
        raise InsecureClusterError(
            f"Ray {ray.__version__} has no token authentication (it came in Ray "
            f"{MIN_RAY[0]}.{MIN_RAY[1]}): upgrade Ray (pip install 'aptio[ray]'), or pass "
            "allow_insecure_cluster=True to run without it")
    try:
        from ray._private.authentication.authentication_utils import is_token_auth_enabled
        enabled = bool(is_token_auth_enabled())
    except ImportError:
        enabled = False
    if not enabled and not allow_insecure_cluster:
        raise InsecureClusterError(
            "this Ray cluster does not check an authentication token (RAY_AUTH_MODE is not "
            "'token'): anyone who can reach it can run code in every process of it, aptio's "
            "servers included. Start the cluster with RAY_AUTH_MODE=token (the default for "
            "local clusters since Ray 2.59), or pass allow_insecure_cluster=True")

"""aptio on a Ray cluster (the ``aptio[ray]`` extra; core aptio never imports it): aptio
servers started as Ray actors, placed with Ray's resources and scheduling options, and used as
any :class:`aptio.Server`: the same proxies, calls, errors and lifetime, carried on Ray's own
authenticated channel (COM's remote server, DCOM, on a cluster). Classes registered with
``@aptio.ray.server`` are created in such servers by ``aptio.create``, and proxies pickled by
Ray (a Ray task's arguments, Ray's object store) keep working where they are unpickled."""

try:
    import ray as _ray  # noqa: F401 (checked here, so the error says what to install)
except ImportError as _error:
    raise ImportError("aptio.ray needs Ray: pip install 'aptio[ray]'",
                      name=_error.name) from _error

from ._ray.classes import server as server
from ._ray.security import InsecureClusterError as InsecureClusterError
from ._ray.start import start_server as start_server
from ._ray.transit import DEFAULT_TRANSIT_LEASE as DEFAULT_TRANSIT_LEASE
from ._ray.transit import set_transit_lease as set_transit_lease

__all__ = ("DEFAULT_TRANSIT_LEASE", "InsecureClusterError", "server", "set_transit_lease",
           "start_server")

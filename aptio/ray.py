"""aptio on a Ray cluster (the ``aptio[ray]`` extra; core aptio never imports it): aptio
servers started as Ray actors, placed with Ray's resources and scheduling options, and used as
any :class:`aptio.Server`: the same proxies, calls, errors and lifetime, carried on Ray's own
authenticated channel (COM's remote server, DCOM, on a cluster)."""

from ._ray.start import InsecureClusterError as InsecureClusterError
from ._ray.start import start_server as start_server

__all__ = ("InsecureClusterError", "start_server")

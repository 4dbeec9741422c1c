"""Class registration on Ray: ``@aptio.ray.server`` (COM's class registration for a remote
server). ``aptio.create(cls)`` of a registered class makes the instance in an aptio server
on Ray instead of here: the one server of its name (multiple-use: started by the first
``create`` that needs it, shared by every class registered with that name, shut down with
the runtime), or, ``single_use``, a server of its own that ends once the object goes.

Core aptio reaches this module only through the registration's starter (a hook it awaits
instead of starting a local server process); inside the server, ``create`` finds that it is
the server named and makes the object there, as for ``@aptio.local_server``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .._values.declarations import register_server_class
from .start import Role, launch, start_options

__all__ = ["server"]

C = TypeVar("C", bound=type)


def server(name: str | None = None, *, single_use: bool = False,
           **ray_options: Any) -> Callable[[C], C]:
    """Declare that ``aptio.create(cls)`` makes instances in an aptio server on Ray:
    ``@aptio.ray.server("hashers", num_cpus=2)`` puts every instance in the one server named
    "hashers", started on first use with those options (any of
    :func:`aptio.ray.start_server`'s; the first class to start a name chooses them);
    ``@aptio.ray.server(single_use=True)`` starts a server per instance, which ends when the
    instance's last proxy goes. Ray must be initialized when the instance is created, and
    the class must be importable on the cluster (:class:`aptio.ServerStartError` saying so
    otherwise). Inside the server it names, ``create`` makes the object there."""
    known = start_options()
    unknown = sorted(set(ray_options) - set(known))
    if unknown:
        raise TypeError(f"aptio.ray.server() got unknown options {', '.join(unknown)}: it "
                        f"takes those of aptio.ray.start_server ({', '.join(known)})")
    options = known | ray_options

    async def start(server_name: str | None, single_use: bool, cls: str) -> object:
        role = Role(single_use, cls, f"aptio.create() of {cls} (@aptio.ray.server)")
        return await launch(server_name, dict(options), role)

    return register_server_class("ray.server", name, single_use, start)

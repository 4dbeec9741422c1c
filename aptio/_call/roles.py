"""The small roles a call deals with, named by what they do: something waiting on a call
(:class:`Notifiable`), and something holding an object for its proxies (:class:`Releasable`)."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Notifiable", "Releasable"]


class Notifiable(Protocol):
    """A waiter on a call: told (possibly twice) that the call's state changed."""

    def notify(self) -> None: ...

    def notify_now(self) -> None:
        """``notify``, from a plain callback of the calling thread's loop: a waiter on that
        loop may run at once."""
        ...


class Releasable(Protocol):
    """What holds an object for its proxies (a stub): the last release hands it home."""

    def take_object(self) -> object:
        """Hand over every reference to the object (clearing them here), to be dropped on the
        object's home thread."""
        ...

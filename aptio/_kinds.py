"""Apartment kinds (COM: APTTYPE)."""

from __future__ import annotations

import enum

__all__ = ["ApartmentKind"]


class ApartmentKind(enum.Enum):
    """What kind of apartment an :class:`aptio.Apartment` is (COM: ``APTTYPE``)."""

    MAIN_STA = "main_sta"
    STA = "sta"
    MTA = "mta"
    NEUTRAL = "neutral"

    @property
    def is_sta(self) -> bool:
        """True for the main STA and every other STA: one thread, one event loop."""
        return self is ApartmentKind.MAIN_STA or self is ApartmentKind.STA

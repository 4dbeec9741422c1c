"""The creation matrix (COM_SPEC section 2): where ``create`` puts a new object."""

from __future__ import annotations

import enum

from .enums import ApartmentKind, ThreadingModel

__all__ = ["Placement", "placement"]


class Placement(enum.Enum):
    """Where the creation matrix puts a new object, relative to its creator."""

    SAME = "same"  # the creator's own apartment: direct
    MAIN_STA = "main_sta"
    MTA = "mta"
    HOST_STA = "host_sta"
    NEUTRAL = "neutral"
    THREAD_STA = "thread_sta"  # an NA caller running on an STA thread: that STA


def placement(model: ThreadingModel, creator: ApartmentKind, on_sta_thread: bool) -> Placement:
    """The creation matrix of COM_SPEC section 2.

    ``creator`` is the creating apartment's kind; ``on_sta_thread`` matters only for a NEUTRAL
    creator (the NA borrows its caller's thread, which may belong to an STA or the MTA).
    """
    if model is ThreadingModel.SINGLE:
        return Placement.SAME if creator is ApartmentKind.MAIN_STA else Placement.MAIN_STA
    if model is ThreadingModel.NEUTRAL:
        return Placement.SAME if creator is ApartmentKind.NEUTRAL else Placement.NEUTRAL
    if model is ThreadingModel.FREE:
        return Placement.SAME if creator is ApartmentKind.MTA else Placement.MTA
    if model is ThreadingModel.BOTH:
        return Placement.SAME
    # APARTMENT
    if creator.is_sta:
        return Placement.SAME
    if creator is ApartmentKind.NEUTRAL and on_sta_thread:
        return Placement.THREAD_STA
    return Placement.HOST_STA

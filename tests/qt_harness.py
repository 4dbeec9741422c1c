"""Helpers for tests that run Qt (PySide6) offscreen: skip with the reason when PySide6 cannot
be imported, and one ``QApplication`` for the test process, on the offscreen platform."""

from __future__ import annotations

import os
from typing import Any

import pytest

SKIP_REASON = (
    "PySide6 is not installed or cannot load ({error}); install aptio[qt] to run the Qt tests"
)


def require_pyside6() -> Any:
    """PySide6.QtWidgets, or skip the calling test with the reason."""
    try:
        from PySide6 import QtWidgets
    except ImportError as error:  # missing, or its Qt libraries cannot load here
        pytest.skip(SKIP_REASON.format(error=error))
    return QtWidgets


def offscreen_env(**extra: str) -> dict[str, str]:
    """The environment for a Qt subprocess: offscreen, no display needed."""
    return {**os.environ, "QT_QPA_PLATFORM": "offscreen", **extra}


def application() -> Any:
    """The process's ``QApplication``, created on first use on the offscreen platform."""
    QtWidgets = require_pyside6()
    qapp = QtWidgets.QApplication.instance()
    if qapp is None:
        saved = os.environ.get("QT_QPA_PLATFORM")
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # read once, by the constructor
        try:
            qapp = QtWidgets.QApplication(["aptio-tests"])
        finally:
            if saved is None:
                del os.environ["QT_QPA_PLATFORM"]
            else:
                os.environ["QT_QPA_PLATFORM"] = saved
    return qapp

"""``python -m aptio trace summarize FILE`` and ``python -m aptio trace plot FILE -o PNG``."""

from __future__ import annotations

import argparse
import sys

from .._values.errors import TraceFileError
from .reader import load
from .summary import summarize

__all__ = ["main"]

_PLOT_MISSING = (
    "python -m aptio trace plot needs matplotlib, which is not installed; install it with\n"
    "    pip install 'aptio[plot]'\n"
    "(or read the file in a browser: https://ui.perfetto.dev opens it as it is)\n"
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aptio trace",
        description="Look at a call recording (aptio.recording, aptio.run(main, trace=...), "
                    "APTIO_TRACE) without a browser.")
    commands = parser.add_subparsers(dest="command", required=True)
    text = commands.add_parser("summarize", help="the slowest calls, queue waits per "
                               "apartment and the longest chains, as text")
    text.add_argument("file")
    text.add_argument("--top", type=int, default=10, help="rows per list (default 10)")
    picture = commands.add_parser("plot", help="a timeline picture: one lane per apartment, "
                                  "calls as bars, chains as lines (needs aptio[plot])")
    picture.add_argument("file")
    picture.add_argument("-o", "--output", required=True, help="the PNG (or SVG, PDF) to write")
    picture.add_argument("--width", type=float, default=12.0, help="inches (default 12)")
    args = parser.parse_args(argv)
    try:
        view = load(args.file)
    except TraceFileError as error:
        print(f"aptio trace: {error}", file=sys.stderr)
        return 2
    if args.command == "summarize":
        sys.stdout.write(summarize(view, args.top))
        return 0
    try:
        from .plot import plot
    except ImportError:
        sys.stderr.write(_PLOT_MISSING)
        return 2
    try:
        plot(view, args.output, args.width)
    except OSError as error:
        print(f"aptio trace: cannot write {args.output!r}: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}")
    return 0

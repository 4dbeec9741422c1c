"""Command line: ``python -m aptio demo``, ``python -m aptio bench [sync] [options]`` and
``python -m aptio trace summarize|plot FILE``."""

from __future__ import annotations

import sys

USAGE = """usage: python -m aptio COMMAND

commands:
  demo            a narrated tour of apartments, threading models, calls and shutdown
  bench [ARGS]    the cross-apartment call benchmarks (python -m aptio bench --help)
  bench sync      the synchronization-primitive benchmarks
  bench processes calls into server processes, against a raw pipe
  bench trace     what recording calls costs per call (aptio.recording)
  trace summarize FILE        a call recording as text (python -m aptio trace --help)
  trace plot FILE -o PNG      a call recording as a timeline picture (needs aptio[plot])
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help", "help"}:
        print(USAGE, end="")
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "demo":
        from ._demo import main as demo

        demo()
        return 0
    if command == "bench":
        from ._bench_entry import run_bench

        return run_bench(rest)
    if command == "trace":
        from ._trace.cli import main as trace

        return trace(rest)
    print(f"unknown command {command!r}\n\n{USAGE}", end="", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

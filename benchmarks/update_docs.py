"""Put the tables of one benchmark run into README.md, the performance guide and the servers
guide.

    python -m aptio bench --markdown bench.md
    python -m aptio bench sync --markdown sync.md
    python benchmarks/update_docs.py bench.md [more.md ...] [--check]

The docs mark each generated table with an HTML comment line before and after it,
``<!-- bench:NAME:begin -->`` and ``<!-- bench:NAME:end -->``; ``bench --markdown`` writes its
tables between the same lines. Every block of a page whose NAME the run wrote is replaced by
the run's block, so the README and the guide always show the same run.

The first file provides every block it has. A later file provides only the blocks the first
lacks: the sync-against-async table of its own Python version (``methods-X.Y``), from a run of
the same benchmark on that Python. Blocks of the docs that no file provides keep their text,
and are listed, as are a file's blocks that no page shows.

``--check`` changes nothing and exits with status 1 if a page would change.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "docs" / "guides" / "performance.md",
         ROOT / "docs" / "guides" / "servers.md", ROOT / "docs" / "primitives.md"]

BLOCK = re.compile(
    r"^<!-- bench:(?P<name>[\w.-]+):begin -->\n(?P<body>.*?)^<!-- bench:(?P=name):end -->$",
    re.MULTILINE | re.DOTALL)


def read_blocks(text: str) -> dict[str, str]:
    """NAME -> the text between a block's marker lines (ending with a newline)."""
    blocks: dict[str, str] = {}
    for match in BLOCK.finditer(text):
        if match["name"] in blocks:
            raise SystemExit(f"block {match['name']!r} appears twice in one benchmark output")
        blocks[match["name"]] = match["body"]
    return blocks


def merge_runs(outputs: list[str]) -> dict[str, str]:
    """The blocks to use: all of the first output's, then what each later one adds."""
    merged: dict[str, str] = {}
    for text in outputs:
        for name, body in read_blocks(text).items():
            merged.setdefault(name, body)
    return merged


def fill(page: str, blocks: dict[str, str]) -> tuple[str, set[str], set[str]]:
    """The page with its blocks replaced; the names it filled, and the names it left as they
    were because no output provides them."""
    filled: set[str] = set()
    missing: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in blocks:
            missing.add(name)
            return match[0]
        filled.add(name)
        return f"<!-- bench:{name}:begin -->\n{blocks[name]}<!-- bench:{name}:end -->"

    text = BLOCK.sub(replace, page)
    opened = re.findall(r"^<!-- bench:([\w.-]+):begin -->$", page, re.MULTILINE)
    closed = {match["name"] for match in BLOCK.finditer(page)}
    if unclosed := sorted(set(opened) - closed):
        raise SystemExit(f"no matching end line for block(s) {', '.join(unclosed)}")
    return text, filled, missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("outputs", nargs="+", type=Path,
                        help="files written by `python -m aptio bench --markdown PATH`")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a page would change")
    args = parser.parse_args(argv)
    blocks = merge_runs([path.read_text(encoding="utf-8") for path in args.outputs])
    if not blocks:
        raise SystemExit("no bench:NAME blocks in the given files: write them with "
                         "`python -m aptio bench --markdown PATH`")
    used: set[str] = set()
    stale = False
    for page in PAGES:
        before = page.read_text(encoding="utf-8")
        after, filled, missing = fill(before, blocks)
        used |= filled
        name = page.relative_to(ROOT)
        if missing:
            print(f"{name}: kept (no output has them): {', '.join(sorted(missing))}")
        if after != before:
            stale = True
            if not args.check:
                page.write_text(after, encoding="utf-8")
            print(f"{name}: {'would update' if args.check else 'updated'} "
                  f"{', '.join(sorted(filled))}")
    if unused := sorted(set(blocks) - used):
        print(f"not shown on any page: {', '.join(unused)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())

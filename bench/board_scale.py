"""The board at scale: generate a board of 500 synthetic records, build it, print the build time and sizes.

    python bench/board_scale.py --out /tmp/board500            # generate (a few minutes), then build twice
    python bench/board_scale.py --out /tmp/board500            # again: reuses the records, builds twice

The records are hand-made by sinkbench.testing (records.py, boards.py) (valid under the schema, every number chosen):
several families, each with a few model sizes and several releases, on both suites (quick and
standard), run on a few devices. Quick records have realistic sizes (700 documents per accuracy
task, 100 profile texts, 30 layers x 9 heads, ~350 KB); standard ones are smaller than a real
standard run (its 23 tasks at realistic size would be ~900 KB each), and say so in the output.

Targets (issue 16): a build <= 60 s on the project's 2-core machine, an index <= 2 MB with every
row present, and a rebuild byte-identical to the first. Issue 23: records are checked once per
content (sinkbench/board/cache.py), so a rebuild with no record changed takes < 60 s whatever the board.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

from sinkbench.board.build import OUTPUTS, build
from sinkbench.board.cache import CheckCache
from sinkbench.testing.boards import generate

def digest(board: Path) -> str:
    """One hash over every built file (path and bytes), to show a rebuild is byte-identical."""
    h = hashlib.sha256()
    for path in sorted([*(board / name for name in OUTPUTS), *(board / "site" / "models").rglob("*.html")]):
        h.update(str(path.relative_to(board)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the board folder (made if missing)")
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--distinct", type=int, default=None, help="make only this many records, reuse the rest")
    parser.add_argument("--small", action="store_true", help="sinkbench.testing.records' small default sizes")
    args = parser.parse_args()
    if not (args.out / "submissions").is_dir():
        print(f"generating {args.records} records into {args.out}")
        print(f"generated in {generate(args.out, args.records, args.distinct, not args.small):.0f} s")
    files = sorted((args.out / "submissions").rglob("*.json"))
    print(f"{len(files)} records, {sum(f.stat().st_size for f in files) / 1e6:.0f} MB of JSON")
    # An empty cache of its own: the first build checks every record and draws every page, the rebuild only
    # what changed (nothing).
    with tempfile.TemporaryDirectory(prefix="board-scale-cache-") as folder:
        for what in ("build, nothing cached", "rebuild, no record changed"):
            started = time.perf_counter()
            written = build(args.out, CheckCache(Path(folder)))
            seconds = time.perf_counter() - started
            hashes = digest(args.out)
            print(f"{what}: {seconds:.1f} s, {len(written) - len(OUTPUTS)} record pages, outputs sha256 {hashes[:16]}")
    index = args.out / "site" / "index.html"
    pages = list((args.out / "site" / "models").rglob("*.html"))
    print(f"index: {index.stat().st_size / 1e6:.2f} MB ({index.read_text(encoding='utf-8').count('<tr data-r=') // 2} "
          f"rows); model pages: {sum(p.stat().st_size for p in pages) / 1e6:.0f} MB, largest "
          f"{max(p.stat().st_size for p in pages) / 1e3:.0f} KB; board.json "
          f"{(args.out / 'board.json').stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()

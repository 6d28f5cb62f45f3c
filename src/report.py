"""Report of a sweep or of run dirs: `python -m src.report PATH [PATH ...] [--output DIR]`.

PATH is a sweep dir (its subfolders are the jobs) or a run dir (a folder holding summary.json or
.hydra/). Writes report.md, report.html, report.csv, comparison.png, val_acc.png and a
TensorBoard run (docs/sweeps.md).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from src.sweeps.report import build_report
from src.utils.errors import UserError, one_line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m src.report",
        description="Report of a sweep or of run dirs: the settings compared, one row per job.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="a sweep dir or a run dir")
    parser.add_argument(
        "--output", metavar="DIR", help="where the files go (default: the one PATH given)"
    )
    parser.add_argument(
        "--baseline",
        metavar="OVERRIDES",
        help="the group the others are compared with, e.g. 'optimizer.lr=0.001' (default: the "
        "first group)",
    )
    parser.add_argument(
        "--target",
        type=float,
        help="the score whose time each group takes to reach (default: the baseline's mean)",
    )
    args = parser.parse_args(argv)
    try:
        report = build_report(args.paths, args.output, args.baseline, args.target)
    except UserError as error:
        print(f"Error: {one_line(error)}", file=sys.stderr)
        return 2
    print(report.markdown)
    print("Report written to: " + ", ".join(str(path) for path in report.files))
    return 0


if __name__ == "__main__":
    sys.exit(main())

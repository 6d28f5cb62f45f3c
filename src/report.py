"""Report of a sweep or of run dirs: `python -m src.report PATH [PATH ...] [--output DIR]`.

PATH is a sweep dir (its subfolders are the jobs) or a run dir (a folder holding summary.json or
.hydra/). Writes report.md, report.csv and val_acc.png.
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
        description="Report of a sweep or of run dirs: report.md, report.csv and val_acc.png.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="a sweep dir or a run dir")
    parser.add_argument(
        "--output", metavar="DIR", help="where the files go (default: the one PATH given)"
    )
    args = parser.parse_args(argv)
    try:
        report = build_report(args.paths, args.output)
    except UserError as error:
        print(f"Error: {one_line(error)}", file=sys.stderr)
        return 2
    print(report.markdown)
    print("Report written to: " + ", ".join(str(path) for path in report.files))
    return 0


if __name__ == "__main__":
    sys.exit(main())

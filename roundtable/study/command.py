"""The `study` and `report` subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .plan import check_plan, describe_plan, expand
from .spec import load_experiment


def add_parsers(sub: Any) -> None:
    """Add `study` and `report` to the CLI's subparsers."""
    p = sub.add_parser(
        "study",
        help="run many discussions from an experiment file, concurrently, and compare them",
        description='Run a study (README, "Studies"): factors x seeds, resumable: run the '
        "same command again to carry on.",
    )
    p.add_argument("experiment", type=Path, metavar="EXPERIMENT", help="the experiment file")
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="the study directory (default: TABLE/studies/<name>/)",
    )
    p.add_argument("--dry-run", action="store_true", help="list the runs; run nothing")
    p.add_argument(
        "--offline", action="store_true", help="run every endpoint on the built-in dummy model"
    )
    p.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bar or lines"
    )
    r = sub.add_parser(
        "report",
        help="rebuild a study's runs.csv, answers.csv and report.md",
        description="Rebuild a study's results and report from its runs.",
    )
    r.add_argument("study", type=Path, metavar="STUDY_DIR", help="the study directory")


def default_out(table: Path, name: str) -> Path:
    """studies/<name>/ inside the table."""
    return table / "studies" / name


def main_study(args: argparse.Namespace) -> int:
    """Run `roundtable study`; returns the exit code."""
    experiment = load_experiment(args.experiment)
    runs = expand(experiment)
    check_plan(experiment, runs)
    out = args.out or default_out(experiment.table, experiment.name)
    if args.dry_run:
        print(describe_plan(experiment, runs))
        print(f"the study would be written to {out}/ (--out)")
        return 0
    from .runner import run_study

    return run_study(experiment, runs, out, offline=args.offline, progress=args.progress)


def main_report(args: argparse.Namespace) -> int:
    """Run `roundtable report`."""
    from .report import rebuild

    print(f"roundtable: report: {rebuild(args.study)}")
    return 0

"""The ``jupyter-flink`` command: ``run``, ``sync`` and ``show`` a notebook's Flink state.

    jupyter-flink run NOTEBOOK [-o OUT] [--run-for 30s] [-p NAME=VALUE ...]
    jupyter-flink sync NOTEBOOK        # journal -> cell metadata (VS Code and other frontends)
    jupyter-flink show NOTEBOOK        # what each cell recorded
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["main"]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
MISSING = "(missing)"


class CommandError(Exception):
    """A problem to report in one line (exit code 2), e.g. a missing notebook."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.command(args))
    except CommandError as exc:
        print(f"jupyter-flink: {exc}", file=sys.stderr)
        return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyter-flink",
        description="Run notebooks on Apache Flink and keep each cell's checkpoint and "
                    "savepoint paths in its metadata.")
    commands = parser.add_subparsers(metavar="COMMAND")

    run = commands.add_parser(
        "run", help="execute a notebook with the flink kernel, recording metadata.flink",
        description="Execute NOTEBOOK with the flink kernel. Each cell's job paths are "
                    "written into its metadata as they are recorded; after the last cell the "
                    "jobs keep running for --run-for, then stop as a cancel would (with a "
                    "savepoint where the cell set savepointDir).")
    run.add_argument("notebook", type=Path, help="the .ipynb to run")
    run.add_argument("-o", "--output", type=Path,
                     help="write the executed notebook here (default: NOTEBOOK, in place)")
    run.add_argument("--run-for", default="0s", metavar="DURATION",
                     help="keep streaming jobs running this long after the last cell, e.g. "
                          "30s or 2min; a bare number is seconds (default: stop them at once)")
    run.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                     help="a parameter, injected after the cell tagged 'parameters' "
                          "(repeatable; VALUE becomes a number, bool or None when it reads "
                          "as one: quote it to keep a string)")
    run.add_argument("-k", "--kernel", default="flink", help="kernel name (default: flink)")
    run.add_argument("--timeout", type=float, metavar="SECONDS",
                     help="fail a cell that runs longer than this (default: no limit)")
    run.add_argument("--cwd", type=Path,
                     help="the kernel's working directory (default: the output's folder)")
    run.add_argument("--journal-dir", help="where the kernel keeps its journals, if "
                     "FlinkMagics.journal_dir is configured (default: beside the notebook)")
    run.add_argument("--shutdown-timeout", type=float, default=120.0, metavar="SECONDS",
                     help="time the kernel gets to stop its jobs with savepoints (default 120)")
    run.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    run.set_defaults(command=run_command)

    sync = commands.add_parser(
        "sync", help="copy the journal's recorded paths into the notebook's cell metadata",
        description="The flink kernel records every path in a journal beside the notebook "
                    "(.NAME.ipynb.flink-journal.json). JupyterLab with the jupyter-flink "
                    "extension also puts them into the cells' metadata; for any other "
                    "frontend (VS Code, nbclassic), run this after saving the notebook.")
    sync.add_argument("notebook", type=Path)
    sync.add_argument("--journal-dir", help="the journals' folder, if not beside the notebook")
    sync.add_argument("-n", "--dry-run", action="store_true", help="report, do not write")
    sync.set_defaults(command=sync_command)

    show = commands.add_parser(
        "show", help="list the Flink state recorded in a notebook's cells",
        description="Print, for each cell with metadata.flink, its job and the latest "
                    "checkpoint and savepoint paths a resume would use.")
    show.add_argument("notebook", type=Path)
    show.add_argument("--json", action="store_true", help="print metadata.flink as JSON")
    show.add_argument("--journal-dir", help="the journals' folder, if not beside the notebook")
    show.set_defaults(command=show_command)
    return parser


# --------------------------------------------------------------------------- run


def run_command(args: argparse.Namespace) -> int:
    from ..parsing.durations import parse_duration
    from .parameters import parse_param
    from .runner import run_notebook

    _must_exist(args.notebook)
    try:
        run_for = parse_duration(args.run_for, bare_unit="s").total_seconds()
        parameters = dict(parse_param(text) for text in args.param)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    say = _quiet if args.quiet else _stderr
    try:
        result = run_notebook(
            args.notebook, args.output, parameters=parameters, run_for=run_for,
            kernel_name=args.kernel, timeout=args.timeout, cwd=args.cwd,
            journal_dir=args.journal_dir, shutdown_timeout=args.shutdown_timeout, say=say)
    except Exception as exc:
        if type(exc).__name__ == "NoSuchKernel":
            raise CommandError(
                f"there is no {args.kernel!r} kernel: install it with "
                "`python -m jupyter_flink.kernel install --sys-prefix`.") from None
        raise
    shown = _display_path(result.output)
    if result.failure is not None:
        print(f"jupyter-flink run: {result.failure.describe()} ({shown} was written with "
              "the outputs and paths recorded so far)", file=sys.stderr)
        return EXIT_FAILED
    say(f"Wrote {shown} in {result.seconds:.0f}s: {result.flink_cells} cell(s) carry "
        f"metadata.flink (jupyter-flink show {shown}).")
    return EXIT_INTERRUPTED if result.interrupted else 0


# --------------------------------------------------------------------------- sync


def sync_command(args: argparse.Namespace) -> int:
    from .sync import sync_notebook

    _must_exist(args.notebook)
    report = sync_notebook(args.notebook, journal_dir=args.journal_dir, dry_run=args.dry_run)
    shown = _display_path(args.notebook)
    if not report.journal_found:
        print(f"No journal for {shown} ({_display_path(report.journal)} does not exist): "
              "nothing to sync. The flink kernel writes it when a cell's job starts.")
        return 0
    if not report.changes:
        print(f"{shown} is up to date with its journal ({report.entries} recorded cell(s)).")
        return 0
    verb = "Would update" if args.dry_run else "Updated"
    print(f"{verb} metadata.flink of {len(report.changes)} cell(s) in {shown}:")
    for change in report.changes:
        print(f"  cell {change.index + 1} (id {_short(change.cell_id)}, job "
              f"{change.job_name or '-'})")
        for key, (before, after) in change.fields.items():
            if key in ("updated", "cell_id"):
                continue
            was = f"  (was {before})" if before is not None else ""
            print(f"      {key}: {after}{was}")
    return 0


# --------------------------------------------------------------------------- show


def show_command(args: argparse.Namespace) -> int:
    from ..recording.journal import Journal
    from .notebooks import read_notebook
    from .sync import apply_entries, flink_cells

    _must_exist(args.notebook)
    nb = read_notebook(args.notebook)
    cells = flink_cells(nb)
    if args.json:
        print(json.dumps([{"index": index, "cell_id": cell.get("id"),
                           "flink": cell.metadata["flink"]} for index, cell in cells],
                         indent=1))
        return 0
    shown = _display_path(args.notebook)
    if not cells:
        print(f"{shown}: no cell carries metadata.flink yet.")
    else:
        print(f"{shown}: Flink state recorded in {len(cells)} cell(s)\n")
        width = shutil.get_terminal_size((200, 24)).columns
        table = render_state(cells, width=width)
        print(table)
        notes = ["A cell resumes from these with resumeFromSavepoint=true or "
                 "resumeFromLatestCheckpoint=true in its header (the newest restorable of "
                 "its checkpoint and savepoint)."]
        if MISSING in table:
            notes.insert(0, f"{MISSING}: no _metadata at that path now. Flink deletes a "
                            "job's own checkpoints when it stops with a savepoint; "
                            "resumeFromLatestCheckpoint=true then resumes from that "
                            "savepoint.")
        for note in notes:
            print("\n" + textwrap.fill(note, width=min(width, 100)))
    try:
        entries = Journal.for_notebook(str(args.notebook), args.journal_dir).entries()
    except OSError:
        entries = {}
    behind = apply_entries(nb, entries)  # on our in-memory copy: what sync would change
    if behind:
        print(f"\nThe journal has newer records for {len(behind)} cell(s): "
              f"jupyter-flink sync {shown}")
    return 0


def render_state(cells: Sequence[tuple[int, Any]], *, width: int = 200) -> str:
    """A table of the cells' recorded state; one block per cell if the table is too wide."""
    header = ("cell", "id", "job", "latest checkpoint", "savepoint", "updated")
    rows = []
    for index, cell in cells:
        flink: Mapping[str, Any] = cell.metadata["flink"]
        rows.append((str(index + 1), _short(cell.get("id")), str(flink.get("job_name") or "-"),
                     _path(flink.get("latest_checkpoint_path")),
                     _path(flink.get("savepoint_path")), _when(flink.get("updated"))))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    if sum(widths) + 2 * (len(widths) - 1) <= width:
        lines = [header, tuple("-" * w for w in widths), *rows]
        return "\n".join("  ".join(value.ljust(w) for value, w in zip(line, widths)).rstrip()
                         for line in lines)
    blocks = []
    for cell_no, cell_id, job, checkpoint, savepoint, updated in rows:
        blocks.append(f"cell {cell_no}  id {cell_id}  job {job}  updated {updated}\n"
                      f"    latest checkpoint  {checkpoint}\n"
                      f"    savepoint          {savepoint}")
    return "\n\n".join(blocks)


def _path(value: Any) -> str:
    """The path, flagged when a local one has lost its ``_metadata`` (resuming would fail)."""
    if not value:
        return "-"
    text = str(value)
    if text.startswith("file:"):
        local = Path("/" + text[len("file:"):].lstrip("/"))
        if not (local / "_metadata").exists():
            return f"{text} {MISSING}"
    return text


def _when(value: Any) -> str:
    if not value:
        return "-"
    try:
        moment = datetime.fromisoformat(str(value)).astimezone()
    except ValueError:
        return str(value)
    today = datetime.now().astimezone().date()
    return moment.strftime("%H:%M:%S" if moment.date() == today else "%Y-%m-%d %H:%M")


def _short(cell_id: Any) -> str:
    text = str(cell_id or "-")
    return text if len(text) <= 16 else text[:8] + "..."


# --------------------------------------------------------------------------- helpers


def _must_exist(path: Path) -> None:
    if not path.is_file():
        raise CommandError(f"{path} is not a notebook file.")


def _display_path(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _quiet(text: str) -> None:
    pass


if __name__ == "__main__":
    sys.exit(main())

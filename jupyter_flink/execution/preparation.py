"""Before a paragraph's job is built: its owner, its settings, where it restores from.

In order: a cell owns one job, so a still-running job of the cell is stopped first (with a
savepoint if it had ``savepointDir``, which the resume below may then use); the cell's
properties become Flink settings for its job; the restore path is chosen (resume.py) and
checked on storage, so that a lost checkpoint is an error naming it, not a Java trace.
"""

from __future__ import annotations

import uuid

from ..errors import ClusterError, ConfigurationError, PropertyError, RestError
from ..flink.cluster import cluster_refusal
from ..flink.saved_state import saved_operators
from ..flink.session import FlinkSession
from ..jobs.control import JobControl
from ..jobs.registry import Owner
from ..parsing.properties import ParagraphProperties
from ..recording.record import FLINK_KEY, history_entry
from ..recording.storage import check_restore_path, job_id_of
from .resume import (
    RESTORE_KEY,
    Latest,
    choose_restore_path,
    latest_restore_point,
    recorded_for_cell,
)
from .run import CellRun, Prepared

__all__ = ["SAVEPOINT_DIR_KEY", "Preparation"]

SAVEPOINT_DIR_KEY = "execution.checkpointing.savepoint-dir"
CHECKPOINT_DIR_KEYS = ("execution.checkpointing.dir", "state.checkpoints.dir")


class Preparation:
    """Prepares paragraphs of one session (see the module docstring)."""

    def __init__(self, session: FlinkSession, control: JobControl):
        self.session = session
        self.control = control

    def prepare(self, run: CellRun, *, one_job: bool = False) -> Prepared:
        """``one_job``: the run submits one job, whose id is chosen here (and recorded just
        before it is submitted: :meth:`Launcher.submitting`)."""
        props, cell = run.props, run.cell
        self._check_reachable()
        owner = Owner(cell.notebook_path, cell.cell_id, props.job_name or "")
        self._stop_previous(run, owner)
        overrides = self.job_overrides(props)
        tracker = self.control.tracker
        keyed = bool(owner.cell_id or owner.job_name)
        recorded, notes = recorded_for_cell(
            cell.cell_id, cell.metadata.get(FLINK_KEY),
            tracker.recorded(owner) if keyed else None)
        if keyed and recorded.source == "cell metadata" and owner.cell_id:
            # The record of last resort (a renamed notebook, a new machine): from now on
            # the journal has it too, and what the frontends get next carries it.
            tracker.recorder.adopt(owner.notebook_path, owner.key,
                                   dict(cell.metadata.get(FLINK_KEY) or {}))
        if not (owner.cell_id or owner.job_name) and (
                props.resume_from_savepoint or props.resume_from_latest_checkpoint):
            notes.append("Outside a notebook, paths are recorded per jobName: give this "
                         "paragraph a jobName to record and resume it.")
        choice = choose_restore_path(
            resume_from_savepoint=props.resume_from_savepoint,
            resume_from_latest_checkpoint=props.resume_from_latest_checkpoint,
            paragraph_path=props.restore_path,
            conf_path=self.session.flink_settings().get(RESTORE_KEY),
            recorded=recorded, resume_from=props.resume_from,
            latest=lambda rec: latest_restore_point(rec, usable=self._complete,
                                                    checkpoint_dir=self._checkpoint_dir()))
        notes.extend(choice.notes)
        if choice.latest is not None and choice.latest.unrecorded and keyed:
            tracker.remember(owner, history_entry(
                choice.latest.path, "checkpoint", "crash", job_id_of(choice.latest.path)))
        if choice.path:
            note = check_restore_path(choice.path, savepoint_dirs=self.savepoint_dirs(props))
            if note:
                notes.append(note)
            overrides[RESTORE_KEY] = choice.path
        job_id = uuid.uuid4().hex if one_job and keyed else None  # a JobID: 16 random bytes
        run.prepared = Prepared(owner, overrides, choice.path, choice.reason, tuple(notes),
                                job_id)
        for text in notes:
            run.note(text)
        return run.prepared

    def _check_reachable(self) -> None:
        """A remote cluster that went away fails the cell within seconds: Flink's own client
        would retry its submission for a minute (rest.retry.*) before saying anything."""
        if not self.session.remote or not self.session.started:
            return  # the first job's start checks it (RemoteCluster.start)
        try:
            self.control.tracker.clients.get("probe").config()
        except RestError as exc:
            refusal = cluster_refusal(self.session.rest_url, exc)
            if refusal is not None:
                raise refusal from exc
            raise ClusterError(
                f"The Flink cluster at {self.session.rest_url} does not answer: {exc.message}",
                fix="Check that it still runs (its jobs keep their recorded paths); when it "
                    "answers again, run the cell again.", details=exc.details) from exc

    def _checkpoint_dir(self) -> str | None:
        settings = self.session.job_settings()
        return next((settings[key] for key in CHECKPOINT_DIR_KEYS if settings.get(key)), None)

    def _complete(self, latest: Latest) -> bool:
        """Whether a checkpoint nobody recorded can be read by Flink: a crash while Flink
        wrote its ``_metadata`` leaves it cut off (recorded ones were complete)."""
        if not latest.unrecorded:
            return True
        try:
            self.session.start()
            saved_operators(self.session.gateway, latest.path)
        except Exception:
            return False
        return True

    def _stop_previous(self, run: CellRun, owner: Owner) -> None:
        if not (owner.cell_id or owner.job_name):
            return
        for previous in self.control.tracker.registry.active():
            if previous.owner.key == owner.key:
                outcome = self.control.cancel(previous.job_id)
                run.note(f"This cell's previous job is stopped first. {outcome.message}")

    def job_overrides(self, props: ParagraphProperties) -> dict[str, str]:
        """The Flink settings the cell's properties make for its job."""
        overrides: dict[str, str] = {}
        if props.job_name:
            overrides["pipeline.name"] = props.job_name
        if props.parallelism is not None:
            overrides["parallelism.default"] = str(props.parallelism)
        if props.max_parallelism is not None:
            overrides["pipeline.max-parallelism"] = str(props.max_parallelism)
        if props.allow_non_restored_state is not None:
            # Only when the cell says so: otherwise what %%flink.conf set applies.
            overrides["execution.state-recovery.ignore-unclaimed-state"] = \
                str(props.allow_non_restored_state).lower()
        if props.claim_mode:
            overrides["execution.state-recovery.claim-mode"] = props.claim_mode
        options = self.session.options
        for key, value in props.flink_overrides.items():
            try:
                # ${env:...}/${file:...} must resolve now, and are read again at submission
                resolved = self.session.resolve_flink_setting(key, value)
            except ConfigurationError as exc:
                raise PropertyError(exc.message, name=key, fix=exc.fix,
                                    details=exc.details) from exc
            if options.scope(key) != "job":
                raise PropertyError(
                    f"{key} is a cluster setting and cannot differ per paragraph.", name=key,
                    fix="Set it in %%flink.conf instead.")
            overrides.update(dict(resolved.settings))
        return overrides

    def savepoint_dirs(self, props: ParagraphProperties) -> tuple[str, ...]:
        """Where this cell's savepoints may be: its savepointDir, the configured one."""
        dirs = [props.savepoint_dir, self.session.job_settings().get(SAVEPOINT_DIR_KEY)]
        return tuple(d for d in dirs if d)

    def default_savepoint_dir(self) -> str:
        return self.session.job_settings()[SAVEPOINT_DIR_KEY]

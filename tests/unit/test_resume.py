"""Resume precedence (every branch of the table) and the storage check, without Flink."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_flink.errors import PropertyError, StateNotFoundError
from jupyter_flink.execution.resume import (
    Recorded,
    choose_restore_path,
    latest_restore_point,
    recorded_for_cell,
)
from jupyter_flink.recording.storage import check_restore_path, fsspec_url, list_alternatives

SP = "file:/tmp/sp/savepoint-aa-1"
CHK = "file:/tmp/chk/job/chk-7"
PARA = "file:/tmp/para/savepoint-bb-2"
CONF = "file:/tmp/conf/savepoint-cc-3"
BOTH = Recorded(latest_checkpoint_path=CHK, savepoint_path=SP, source="journal")


def choose(sp: bool, chk: bool, *, para: str | None = PARA, conf: str | None = CONF,
           recorded: Recorded = BOTH):
    return choose_restore_path(resume_from_savepoint=sp, resume_from_latest_checkpoint=chk,
                               paragraph_path=para, conf_path=conf, recorded=recorded)


@pytest.mark.parametrize(("sp", "chk", "para", "conf", "expected"), [
    (True, False, PARA, CONF, SP),      # 1. recorded savepoint
    (True, True, PARA, CONF, SP),       # both flags: the savepoint wins
    (False, True, PARA, CONF, CHK),     # 2. recorded latest checkpoint
    (False, False, PARA, CONF, PARA),   # 3. the paragraph's own path
    (False, False, None, CONF, CONF),   # 4. %%flink.conf
    (False, False, None, None, None),   # 5. fresh start
])
def test_precedence_table(sp, chk, para, conf, expected) -> None:
    assert choose(sp, chk, para=para, conf=conf).path == expected


def test_flag_without_a_recorded_path_falls_through_and_says_so() -> None:
    only_chk = Recorded(latest_checkpoint_path=CHK, source="cell metadata")
    choice = choose(True, True, recorded=only_chk)
    assert choice.path == CHK and "no savepoint is recorded" in " ".join(choice.notes)
    fresh = choose(True, False, para=None, conf=None, recorded=Recorded())
    assert fresh.path is None
    assert "Starting without state" in " ".join(fresh.notes)


def test_reason_names_the_source() -> None:
    assert "cell metadata" in choose(True, False, recorded=Recorded(
        savepoint_path=SP, source="cell metadata")).reason


def test_metadata_copied_from_another_cell_is_not_used() -> None:
    meta = {"cell_id": "other", "savepoint_path": SP, "updated": "2026-01-02T00:00:00"}
    recorded, notes = recorded_for_cell("this", meta, None)
    assert recorded.savepoint_path is None
    assert "other" in notes[0] and f"execution.state-recovery.path={SP}" in notes[0]


def test_newer_of_metadata_and_journal_wins() -> None:
    meta = {"cell_id": "c", "savepoint_path": "file:/old", "updated": "2026-01-01T00:00:00"}
    journal = {"cell_id": "c", "savepoint_path": "file:/new", "updated": "2026-01-02T00:00:00"}
    recorded, _ = recorded_for_cell("c", meta, journal)
    assert recorded.savepoint_path == "file:/new" and recorded.source == "journal"
    recorded, _ = recorded_for_cell("c", {**meta, "updated": "2026-01-03T00:00:00"}, journal)
    assert recorded.savepoint_path == "file:/old" and recorded.source == "cell metadata"


def test_flink_local_paths_become_fsspec_urls() -> None:
    assert fsspec_url("file:/tmp/x") == "file:///tmp/x"
    assert fsspec_url("file:///tmp/x") == "file:///tmp/x"
    assert fsspec_url("s3://bucket/x") == "s3://bucket/x"


def _checkpoint(root: Path, name: str, *, complete: bool = True) -> Path:
    path = root / name
    path.mkdir(parents=True)
    if complete:
        (path / "_metadata").write_bytes(b"x")
    return path


def test_existing_path_passes(tmp_path: Path) -> None:
    chk = _checkpoint(tmp_path / "job", "chk-3")
    assert check_restore_path(f"file:{chk}") is None


def test_lost_checkpoint_lists_survivors_newest_first(tmp_path: Path) -> None:
    job = tmp_path / "chk" / "job"
    _checkpoint(job, "chk-3")
    _checkpoint(job, "chk-5")
    _checkpoint(job, "chk-6", complete=False)  # incomplete: not restorable
    savepoints = tmp_path / "sp"
    sp = _checkpoint(savepoints, "savepoint-ab12-1")
    with pytest.raises(StateNotFoundError) as raised:
        check_restore_path(f"file:{job}/chk-9", savepoint_dirs=(f"file://{savepoints}",))
    error = raised.value
    assert error.path == f"file:{job}/chk-9"
    assert [Path(a.replace("file://", "")).name for a in error.alternatives[:2]] in (
        ["savepoint-ab12-1", "chk-5"], ["chk-5", "savepoint-ab12-1"])
    assert "chk-6" not in str(error)
    assert "resumeFromSavepoint=false" in str(error) and str(sp.name) in str(error)


def test_alternatives_of_an_unreadable_scheme_are_empty() -> None:
    assert list_alternatives("nosuchscheme://x/chk-1") == []


def test_unknown_scheme_passes_through_with_a_note() -> None:
    note = check_restore_path("nosuchscheme://bucket/chk-1")
    assert note and "Could not check" in note


def test_newest_restore_point_picks_the_last_written(tmp_path: Path) -> None:
    import os

    from jupyter_flink.recording.storage import newest_restore_point

    older = _checkpoint(tmp_path / "chk" / "job", "chk-4")
    newer = _checkpoint(tmp_path / "sp", "savepoint-ab-1")
    os.utime(older / "_metadata", (1_000, 1_000))
    os.utime(newer / "_metadata", (2_000, 2_000))
    lost = f"file:{tmp_path}/chk/job/chk-9"
    assert newest_restore_point((f"file:{older}", f"file:{newer}", lost, None)) == \
        f"file:{newer}"
    assert newest_restore_point((lost, None)) is None


# ----------------------------------------------------------------------- latest


def _restorable(root: Path, name: str, age_s: float) -> str:
    import os
    import time

    path = _checkpoint(root, name)
    stamp = time.time() - age_s
    os.utime(path / "_metadata", (stamp, stamp))
    return f"file:{path}"


def test_latest_is_the_savepoint_when_the_stop_deleted_the_checkpoints(tmp_path: Path) -> None:
    savepoint = _restorable(tmp_path / "sp", "savepoint-aa-1", age_s=5)
    recorded = Recorded(latest_checkpoint_path=f"file:{tmp_path}/chk/{'a' * 32}/chk-7",
                        savepoint_path=savepoint, history=(
                            {"path": savepoint, "kind": "savepoint", "origin": "stop"},))
    found = latest_restore_point(recorded)
    assert found is not None and found.path == savepoint
    assert found.what == "the savepoint its last job was stopped with"


def test_latest_finds_a_newer_checkpoint_the_kernel_never_recorded(tmp_path: Path) -> None:
    job = tmp_path / "chk" / ("b" * 32)
    older = _restorable(job, "chk-7", age_s=30)
    newer = _restorable(job, "chk-9", age_s=1)
    _checkpoint(job, "chk-10", complete=False)  # in progress: no _metadata yet
    savepoint = _restorable(tmp_path / "sp", "savepoint-bb-1", age_s=60)
    found = latest_restore_point(Recorded(latest_checkpoint_path=older,
                                          savepoint_path=savepoint))
    assert found is not None and found.unrecorded
    assert fsspec_url(found.path).rstrip("/") == fsspec_url(newer).rstrip("/")


def test_latest_finds_the_checkpoints_of_the_cells_last_job(tmp_path: Path) -> None:
    """Job A's chk-7 was recorded; job B, the next run, restored from it, completed chk-8 (and
    committed its output), and the kernel died before recording it: B's chk-8 is the latest,
    or the next run replays what B already wrote."""
    root = tmp_path / "chk"
    recorded_one = _restorable(root / ("a" * 32), "chk-7", age_s=30)
    later = _restorable(root / ("b" * 32), "chk-8", age_s=2)
    _restorable(root / ("c" * 32), "chk-9", age_s=1)  # another cell's job: not this one's
    found = latest_restore_point(Recorded(latest_checkpoint_path=recorded_one,
                                          job_id="b" * 32))
    assert found is not None and found.unrecorded and "last job" in found.what
    assert fsspec_url(found.path).rstrip("/") == fsspec_url(later).rstrip("/")
    # the recorded job's own checkpoints: nothing to look for elsewhere
    same = latest_restore_point(Recorded(latest_checkpoint_path=recorded_one, job_id="a" * 32))
    assert same is not None and not same.unrecorded


def test_latest_finds_the_checkpoints_of_a_job_its_kernel_never_recorded(tmp_path: Path
                                                                         ) -> None:
    """Job B's id was recorded before it was submitted (``submitted_job_ids``); its kernel
    died before recording B itself: the journal's job_id is still A's. B's checkpoints are
    found, also when nothing was ever recorded but the checkpoint directory is known."""
    root = tmp_path / "chk"
    recorded_one = _restorable(root / ("a" * 32), "chk-7", age_s=30)
    later = _restorable(root / ("b" * 32), "chk-8", age_s=2)
    record = {"latest_checkpoint_path": recorded_one, "job_id": "a" * 32,
              "submitted_job_ids": ["b" * 32, "a" * 32], "updated": "2026-11-30T00:00:00Z"}
    recorded, notes = recorded_for_cell("c1", None, record)
    assert recorded.jobs == ("b" * 32, "a" * 32) and notes == []
    found = latest_restore_point(recorded)
    assert found is not None and found.unrecorded
    assert fsspec_url(found.path).rstrip("/") == fsspec_url(later).rstrip("/")

    first_run = Recorded(jobs=("b" * 32,))  # killed while submitting the cell's first job
    assert latest_restore_point(first_run) is None  # where to look is not known
    found = latest_restore_point(first_run, checkpoint_dir=f"file://{root}")
    assert found is not None and fsspec_url(found.path).rstrip("/") == \
        fsspec_url(later).rstrip("/")
    choice = choose_restore_path(resume_from_savepoint=False, resume_from_latest_checkpoint=True,
                                 paragraph_path=None, conf_path=None, recorded=first_run,
                                 latest=lambda rec: latest_restore_point(
                                     rec, checkpoint_dir=f"file://{root}"))
    assert choice.path == found.path


def test_latest_prefers_a_checkpoint_newer_than_the_savepoint(tmp_path: Path) -> None:
    savepoint = _restorable(tmp_path / "sp", "savepoint-cc-1", age_s=60)
    checkpoint = _restorable(tmp_path / "chk" / ("c" * 32), "chk-3", age_s=2)
    choice = choose_restore_path(resume_from_savepoint=False, resume_from_latest_checkpoint=True,
                                 paragraph_path=None, conf_path=None, recorded=Recorded(
                                     latest_checkpoint_path=checkpoint, savepoint_path=savepoint))
    assert choice.path == checkpoint
    assert "the recorded checkpoint, the newest restorable state" in " ".join(choice.notes)


def test_latest_of_nothing_readable_is_the_recorded_checkpoint(tmp_path: Path) -> None:
    lost = f"file:{tmp_path}/chk/{'d' * 32}/chk-5"
    found = latest_restore_point(Recorded(latest_checkpoint_path=lost))
    assert found is not None and found.path == lost  # the storage check then names it


def test_resume_from_picks_a_history_entry() -> None:
    history = ({"path": "file:/sp/newest", "kind": "savepoint", "origin": "manual"},
               {"path": "file:/sp/older", "kind": "savepoint", "origin": "stop"})
    choice = choose_restore_path(resume_from_savepoint=False, resume_from_latest_checkpoint=False,
                                 paragraph_path=None, conf_path=None,
                                 recorded=Recorded(history=history), resume_from=2)
    assert choice.path == "file:/sp/older" and "entry 2" in choice.reason
    with pytest.raises(PropertyError, match=r"resumeFrom=3: .* has 2"):
        choose_restore_path(resume_from_savepoint=False, resume_from_latest_checkpoint=False,
                            paragraph_path=None, conf_path=None,
                            recorded=Recorded(history=history), resume_from=3)


@pytest.mark.parametrize(("metadata", "says"), [
    ("garbage", "flink value is a str, not an object"),
    ({"cell_id": "c", "savepoint_path": 42}, "flink.savepoint_path is int 42"),
    ({"cell_id": "c", "latest_checkpoint_path": ["a", "b"]}, "flink.latest_checkpoint_path is"),
    ({"cell_id": "c", "history": [{"path": 1}]}, "flink.history has entries that are not"),
])
def test_bad_metadata_values_are_named_and_ignored(metadata: object, says: str) -> None:
    journal = {"cell_id": "c", "savepoint_path": SP, "updated": "2026-01-01T00:00:00+00:00"}
    recorded, notes = recorded_for_cell("c", metadata, journal)
    assert recorded.savepoint_path == SP  # the journal's: the bad field is not used
    assert any(says in note and "ignored" in note for note in notes), notes

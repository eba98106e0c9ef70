"""A deterministic counting job whose output proves exactly-once across stop and resume.

A sequence source feeds a keyed running count (COUNT(*) OVER (PARTITION BY k)) into a
filesystem sink: after any stop and resume, the ids in the committed files must be 1..N with
none missing or doubled, and every key's counts 1..n, which only holds if the source position
and the keyed state were restored. The sink commits files only at checkpoints, rolled every
second (DESIGN.md: the facts measured about the filesystem sink).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

# A keyed count over a deterministic source; append-only, so a file sink can hold it.
COUNTING_TABLES = """
CREATE TABLE IF NOT EXISTS seq_src (id BIGINT, k INT, pt AS PROCTIME()) WITH (
  'connector' = 'datagen', 'rows-per-second' = '400',
  'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '100000',
  'fields.k.min' = '0', 'fields.k.max' = '4');
CREATE TABLE IF NOT EXISTS {sink} (id BIGINT, k INT, cnt BIGINT) WITH (
  'connector' = 'filesystem', 'path' = 'file://{path}', 'format' = 'csv',
  'sink.rolling-policy.rollover-interval' = '1 s', 'sink.rolling-policy.check-interval' = '1 s');
INSERT INTO {sink} SELECT id, k, COUNT(*) OVER (
  PARTITION BY k ORDER BY pt ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM seq_src;
"""


def committed_rows(directory: Path) -> list[tuple[int, int, int]]:
    """Rows of the sink's committed files (in-progress files start with a dot)."""
    rows = []
    for part in directory.rglob("*"):
        if part.is_file() and not part.name.startswith("."):
            for line in part.read_text().splitlines():
                if line.strip():
                    id_, k, cnt = line.split(",")
                    rows.append((int(id_), int(k), int(cnt)))
    return rows


def assert_exactly_once(rows: list[tuple[int, int, int]]) -> None:
    ids = sorted(r[0] for r in rows)
    if ids != list(range(1, len(ids) + 1)):
        seen = Counter(ids)
        doubled = sorted(i for i, times in seen.items() if times > 1)
        lost = sorted(set(range(1, max(ids) + 1)) - set(seen))
        raise AssertionError(f"ids lost or doubled: {len(ids)} rows, {len(seen)} ids up to "
                             f"{max(ids)}; lost {_ranges(lost)}; doubled {_ranges(doubled)}")
    per_key = defaultdict(list)
    for _, k, cnt in sorted(rows):
        per_key[k].append(cnt)
    for k, counts in per_key.items():
        assert sorted(counts) == list(range(1, len(counts) + 1)), f"key {k}: counts broke"


def _ranges(ids: list[int]) -> str:
    """1-3, 7 for [1, 2, 3, 7] (at most 10 ranges shown)."""
    runs: list[list[int]] = []
    for i in ids:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    text = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in runs[:10])
    return (text + (" ..." if len(runs) > 10 else "")) or "none"

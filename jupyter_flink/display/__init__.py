"""What cells show: a job's live status output and a streaming SELECT's live table, and the
jobs comm that keeps them live in the frontends that show them."""

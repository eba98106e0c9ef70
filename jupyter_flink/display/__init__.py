"""What cells show: a job's live status output and a streaming SELECT's live table."""

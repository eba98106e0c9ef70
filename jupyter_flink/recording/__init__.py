"""What a cell's job recorded: the record (metadata.flink), the journal beside the notebook,
the comm message to frontends, and restore points on storage."""

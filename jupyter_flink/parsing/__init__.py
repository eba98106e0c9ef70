"""Cell text into values: %%flink.conf bodies (conf), paragraph headers (header, properties),
SQL statements (sql) and durations. Pure Python; nothing here starts the JVM."""

"""``jupyter-flink run/show/sync``: notebooks run with nbclient, recorded paths merged into
files. Imports nothing of the kernel's job service, JVM or cluster (an import contract)."""

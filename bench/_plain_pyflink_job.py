"""The baseline of bench_startup.py: the same SQL job from a plain PyFlink script."""

import sys
import time

started = time.time()  # before importing pyflink, like the kernel's first cell
print(f"STARTED {started}", flush=True)

from pyflink.common import Configuration  # noqa: E402
from pyflink.table import EnvironmentSettings, TableEnvironment  # noqa: E402

port = sys.argv[1]
conf = Configuration()
conf.set_string("rest.port", port)
conf.set_string("rest.bind-address", "127.0.0.1")
conf.set_string("rest.address", "127.0.0.1")
settings = EnvironmentSettings.new_instance().in_streaming_mode().with_configuration(conf).build()
tenv = TableEnvironment.create(settings)
tenv.get_config().set("pipeline.name", "bench_job")
for statement in sys.argv[2].split(";"):
    if statement.strip():
        tenv.execute_sql(statement)
sys.stdin.readline()  # keep the job (and its MiniCluster) alive until the parent is done

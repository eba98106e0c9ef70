"""Configuration blocks as the seed documents write them (../shared/seeds)."""

# Zeppelin's guide (seed 000): the %flink.conf block that enables checkpointing.
SEED_000 = """\
pipeline.time-characteristic EventTime
execution.checkpointing.interval 10000
execution.checkpointing.externalized-checkpoint-retention RETAIN_ON_CANCELLATION
state.backend filesystem
state.checkpoints.dir file:///tmp/flink/checkpoints
"""
# Course notes (seed 004): restart strategies, retained checkpoints, savepoint dir, in
# flink-conf.yaml's flat form.
SEED_004_FIXED_DELAY = """\
restart-strategy: fixed-delay
restart-strategy.fixed-delay.attempts: 3
restart-strategy.fixed-delay.delay: 10 s
"""
SEED_004_FAILURE_RATE = """\
restart-strategy: failure-rate
restart-strategy.failure-rate.max-failures-per-interval: 3
restart-strategy.failure-rate.failure-rate-interval: 5 min
restart-strategy.failure-rate.delay: 10 s
"""
SEED_004_NONE = "restart-strategy: none\n"
SEED_004_RETAINED = "state.checkpoints.num-retained: 20\n"
SEED_004_SAVEPOINTS = "state.savepoints.dir: hdfs://namenode:9000/flink/savepoints\n"

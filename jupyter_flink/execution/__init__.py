"""Running a paragraph: a CellRun is prepared (resume choice), its statements or code run, and
its job is launched as the cell's; :class:`~jupyter_flink.execution.service.FlinkService`
wires the kernel's parts together."""

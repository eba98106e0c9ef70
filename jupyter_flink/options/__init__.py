"""Flink's configuration options, read from Flink itself (discovery, cached by cache), the
rules Flink's data cannot tell (rules), and the integration's own keys (interpreter_keys).

:class:`~jupyter_flink.options.registry.OptionRegistry` checks and translates %%flink.conf keys."""

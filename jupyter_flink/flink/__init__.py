"""Everything that touches py4j: the JVM gateway, the embedded or remote cluster, the session
and its environments, the live-result drain and the small Java helpers in ``java/``."""

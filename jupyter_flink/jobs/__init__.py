"""The kernel's jobs: who owns each (registry), what each reached (tracker, poller), how the
ones on screen are doing (health), and how they are stopped and savepointed (control,
autosave). No display, no JVM."""

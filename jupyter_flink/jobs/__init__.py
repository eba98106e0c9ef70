"""The kernel's jobs: who owns each (registry), what each reached (tracker, poller), and how
they are stopped and savepointed (control, autosave). No display, no JVM."""

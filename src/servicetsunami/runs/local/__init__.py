"""The local launcher: runs claimed from the system store, executed in threads of this process, with
subprocesses for work that must be killable (:mod:`.processes`)."""

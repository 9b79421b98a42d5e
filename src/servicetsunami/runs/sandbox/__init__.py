"""Where tenant code runs: :mod:`.bwrap` (the bubblewrap command and a probe of whether it can
start), :mod:`.kernels` (IPython kernels inside it), :mod:`.wire` (frames over the unix socket to
the service) and :mod:`.shim` (the Databricks names a kernel gets: ``spark``, ``dbutils``, ``display``)."""

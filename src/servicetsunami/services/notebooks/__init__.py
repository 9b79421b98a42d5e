"""Notebooks (DESIGN.md section 11): stored per tenant with versions (:mod:`.notebooks`), converted
between Databricks source, Jupyter and HTML (:mod:`.source_format`), and run in a sandboxed kernel as
runs of kind ``notebook_run`` (:mod:`.runs`), whose ``spark``/``dbutils`` reach the lakehouse
through :mod:`.bridge`."""

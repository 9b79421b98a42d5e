"""The Databricks engine: Unity Catalog catalogs, volumes and Delta tables through a SQL warehouse,
driven by ``databricks-sdk`` (imported only when this engine is chosen).

workspace.py   the SDK client, the one ``_translate_error``, warehouse choice, statement execution
types.py       Databricks SQL type names to Arrow types (result schemas, table columns)
writes.py      Arrow streams to Parquet files in the landing volume, and the SQL that loads them
engine.py      :class:`DatabricksEngine`, the Engine contract on top of those
"""

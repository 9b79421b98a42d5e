"""The embedded lakehouse engine: Delta Lake on local disk, read with DuckDB."""

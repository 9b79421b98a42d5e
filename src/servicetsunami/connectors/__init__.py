"""Sources: where data comes from (the contract in ``base``; files, PostgreSQL)."""

"""Vector search (DESIGN.md section 12): embeddings (:mod:`.embeddings`), index tables built and
synced as runs (:mod:`.build`, :mod:`.indexes`), and search: exact, HNSW, hybrid (:mod:`.search`)."""

"""The service layer: one module per area, called by every front door with the caller's Principal."""

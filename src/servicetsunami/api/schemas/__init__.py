"""Request and response bodies of the REST door, one module per resource: ``*Create`` (what a
client sends to make one), ``*Update`` (what it may change), ``*Public`` (what it gets back; never a
secret). Result shapes the services already define are re-exported rather than copied."""

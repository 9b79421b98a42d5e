"""Authentication and secrets: API keys (``auth``), and later the key ring and SSRF guard."""

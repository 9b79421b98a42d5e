"""Authentication and secrets: API keys (``auth``), the master key ring (``secrets``) and the guard on
source hosts (``ssrf``)."""

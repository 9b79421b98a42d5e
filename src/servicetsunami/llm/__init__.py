"""Models behind a port: :mod:`.base` (the LLM contract, :class:`Answer` and the two signals),
:mod:`.registry` (providers by name), one module per provider (:mod:`.anthropic`, :mod:`.openai`,
both over :mod:`.http`), and :mod:`.chain` (the order the AI tools try their paths in)."""

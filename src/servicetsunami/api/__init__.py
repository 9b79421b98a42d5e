"""The REST door: ``app.create_app(settings)``, dependencies in ``deps``, routes per resource."""

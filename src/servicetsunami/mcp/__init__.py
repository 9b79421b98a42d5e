"""The MCP door: the same tools and resources over stdio (``tsunami mcp``) and streamable HTTP
(``/mcp`` inside ``tsunami serve``).

- :mod:`.server`: :func:`~.server.build_mcp_server`, the instructions, middleware wiring;
- :mod:`.tools`: one module per service area; :mod:`.resources`: ``table://`` templates;
- :mod:`.auth`: the caller's principal, the API-key verifier, the role gate;
- :mod:`.errors`: what the client sees when something fails;
- :mod:`.http`: :func:`~.http.mcp_http_app` and the Host/Origin guard;
- :mod:`.stdio`: :func:`~.stdio.run_stdio`.

fastmcp is imported in this package only; importing the package itself stays cheap.
"""

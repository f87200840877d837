"""The guard station's web side: Starlette app, login, API, SSE, pages."""

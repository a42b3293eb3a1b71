"""The application factory: ``uvicorn --factory api.main:create_app``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api import errors, middleware, ratelimit
from api.container import Container
from api.middleware import install as install_middleware
from api.problems import document_problems
from api.routers import documents, events, health, meetings, proposals, users
from api.settings import Settings

DESCRIPTION = """\
The record of a UN peacekeeping preparatory meeting: rapporteurs submit proposals,
chairs decide on them, and the compiled recommendations go to the ministerial.
Every change is an event; every list and document is a projection of events.
"""


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    """Build the service: store, views, projector and routes, from the settings."""
    settings = settings or Settings()
    services = container or Container(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            services.close()

    app = FastAPI(
        title="prepmeet",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.container = services
    errors.install(app)
    install_middleware(app, settings, services.metrics)
    for module in (health, users, meetings, proposals, documents, events):
        app.include_router(module.router)
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(
                default_openapi(), ratelimit.EXEMPT, middleware.UNBOUNDED
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    services.start()
    return app

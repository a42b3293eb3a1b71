"""The application factory: ``uvicorn --factory api.main:create_app``, or ``serve_app`` as
``prepmeet serve`` runs it."""

from __future__ import annotations

import gc
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from pydantic import ValidationError

from api import docs_ui, errors, middleware, ratelimit
from api.container import Container
from api.middleware import install as install_middleware
from api.problems import document_problems
from api.routers import documents, events, health, meetings, proposals, users
from api.settings import Settings
from domain.store import StoreUnavailable

DESCRIPTION = """\
The record of a UN peacekeeping preparatory meeting: rapporteurs submit proposals,
chairs decide on them, and the compiled recommendations go to the ministerial.
Every change is an event; every list and document is a projection of events.
"""


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    """Build the service: store, views, projector and routes, from the settings.

    Called without arguments (by ``uvicorn --factory``), a store or setting that cannot be
    used ends the process with one line on standard error rather than a traceback.
    """
    if settings is None and container is None:
        try:
            settings = Settings()
            container = Container(settings)
        except (StoreUnavailable, ValidationError, OSError) as e:
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(f"prepmeet: {first_line}", file=sys.stderr)
            raise SystemExit(1) from None
    settings = settings or Settings()
    services = container or Container(settings)
    sys.setswitchinterval(settings.switch_interval_ms / 1000)

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
        docs_url=None,
        redoc_url=None,
    )
    app.state.container = services
    errors.install(app)
    install_middleware(app, settings, services.metrics)
    for module in (health, users, meetings, proposals, documents, events):
        app.include_router(module.router)
    docs_ui.install(app)
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


def serve_app() -> FastAPI:
    """:func:`create_app` for a server process (``prepmeet serve`` runs this factory).

    What exists once the app is built (modules, routes, schemas, the first cached state)
    lives as long as the process, so it is moved out of the cyclic collector's sight
    (``gc.freeze``): a full collection then walks only what came after. Under 16 clients
    creating proposals, full collections took 50-85 ms several times a run, with every
    request in flight waiting, and made the slowest commits; frozen, they take 5-11 ms.
    Tests build many apps in one process, so :func:`create_app` itself does not freeze.
    """
    app = create_app()
    gc.collect()
    gc.freeze()
    return app

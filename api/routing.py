"""The routes' class: a ``def`` endpoint runs in the thread pool, and the rest of the request
on the event loop.

FastAPI runs a ``def`` endpoint in the thread pool, and then validates its return value
against the response model in the thread pool too: two hand-overs between the event loop
and a pool thread per request, each of which waits for the interpreter lock under load. A
route of this class wraps such an endpoint in a coroutine that runs it in the pool, so that
FastAPI validates the response on the event loop, as for an ``async def`` endpoint: one
hand-over fewer, and the same endpoint, dependencies, signature and schema.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool


def in_thread_pool(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` as a coroutine function that runs it in the thread pool."""

    @functools.wraps(endpoint)
    async def run(*args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(endpoint, *args, **kwargs)

    # the signature with its annotations evaluated: FastAPI reads the parameters from it
    run.__signature__ = inspect.signature(endpoint, eval_str=True)  # type: ignore[attr-defined]
    return run


class ThreadedRoute(APIRoute):
    """An API route whose ``def`` endpoint runs in the thread pool, the rest on the loop."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = in_thread_pool(endpoint)
        super().__init__(path, endpoint, **kwargs)

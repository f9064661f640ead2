"""The FastAPI application over one collection store, with the viewer at `/`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from indexer import __version__

from .context import ServiceContext
from .errors import install_error_handlers
from .routes import items, search, selection, status, terms
from .routes import map as map_routes  # not `map`: the builtin
from .settings import Settings


def create_app(settings: Settings, context: ServiceContext | None = None) -> FastAPI:
    """The application; `context` may be given ready-made (tests reuse one across apps)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.context = context or ServiceContext.load(settings)
        try:
            yield
        finally:
            if context is None:  # made here: ended here (a given one is its owner's)
                app.state.context.close()

    app = FastAPI(
        title="Regard",
        version=__version__,
        summary="Search and compare the images of a IIIF collection.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    if settings.allowed_origins:
        # The API only reads: other sites' pages may GET it, and POST a picture to search
        # with (its Content-Type names the picture's format), never with credentials.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_methods=["GET", "HEAD", "POST"],
            allow_headers=["Content-Type"],
            # What a selection's export left out, for a page to say it.
            expose_headers=["X-Regard-Skipped", "X-Regard-Skipped-Ids"],
            max_age=3600,
        )
    for module in (search, items, terms, map_routes, selection, status):
        app.include_router(module.router, prefix="/api")
    app.mount("/", StaticFiles(directory=settings.viewer_dir, html=True), name="viewer")
    return app

"""Browser pages served by the service under /ui: agent overlay, supervisor dashboard, QA review."""

from importlib.resources import files
from pathlib import Path, PurePosixPath

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(str(files(__name__)))
PAGE_ASSETS = frozenset({".html", ".js", ".css", ".svg", ".png"})
"""The only files served under /ui: page code and images (never this package's Python source)."""


class PageFiles(StaticFiles):
    """Static files of the pages only: any other suffix, or a folder, is 404."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if PurePosixPath(path).suffix.lower() not in PAGE_ASSETS:
            raise HTTPException(404)
        return await super().get_response(path, scope)

"""The dashboard's own CSS and JavaScript, served from memory with long-lived caching.

Files are read once; each URL carries a hash of the file's content (`app.css?v=1a2b3c4d`),
so browsers may cache for a year and still get a new file the moment it changes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from perpetuo.control.errors import not_found

STATIC_DIR = Path(__file__).parent / "static"
TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    version: str


def load_assets(directory: Path = STATIC_DIR) -> dict[str, Asset]:
    assets = {}
    for path in sorted(directory.iterdir()):
        if path.is_file() and path.suffix in TYPES:
            body = path.read_bytes()
            version = hashlib.sha256(body).hexdigest()[:10]
            assets[path.name] = Asset(body, TYPES[path.suffix], version)
    return assets


class StaticFiles:
    def __init__(self, assets: dict[str, Asset]) -> None:
        self.assets = assets

    def url(self, name: str) -> str:
        return f"/ui/static/{name}?v={self.assets[name].version}"

    async def serve(self, request: Request) -> Response:
        asset = self.assets.get(request.path_params["name"])
        if asset is None:
            raise not_found("File")
        etag = f'"{asset.version}"'
        headers = {"cache-control": "public, max-age=31536000, immutable", "etag": etag}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.content_type, headers=headers)

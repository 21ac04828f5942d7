"""Front-end assets served from installed Python packages (no CDN: the pages work
offline): plotly.js, as the `plotly` package ships it, for the drift dashboard's
charts. Only the one file is exposed, under `vendor/` (the package holds ten more
megabytes of data sets and bundles the pages never load)."""

from __future__ import annotations

from pathlib import Path

from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PACKAGED = {"vendor/plotly.min.js": ("plotly", "package_data/plotly.min.js")}


def _location(package: str, relative: str) -> Path:
    module = __import__(package)
    return Path(module.__file__).parent / relative


class PackagedAssetsFinder(BaseFinder):
    """Finds each of PACKAGED in its installed package (for runserver, WhiteNoise and
    collectstatic alike)."""

    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        if path not in PACKAGED:
            return [] if find_all else None
        found = str(_location(*PACKAGED[path]))
        return [found] if find_all else found

    def list(self, ignore_patterns):
        for name, (package, relative) in PACKAGED.items():
            source = _location(package, relative)
            storage = FileSystemStorage(location=str(source.parent))
            storage.prefix = str(Path(name).parent)
            yield source.name, storage

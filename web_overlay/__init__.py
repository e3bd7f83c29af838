"""Browser pages served by the service under /ui: agent overlay, supervisor dashboard, QA review."""

from importlib.resources import files
from pathlib import Path

STATIC_DIR = Path(str(files(__name__)))

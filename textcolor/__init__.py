"""textcolor: tag-conditioned line-art colorization (pix2pix + zero-centred gradient penalty)."""
from pathlib import Path

__version__ = "0.1.0"

# Everything read at run time ships inside the package (pyproject's package-data), so an editable
# checkout and a wheel install read the same files: the roster and colour tables here, the shipped
# model in assets/default/ (a hub-layout directory: model.safetensors, config.json, README.md card).
PACKAGE_DIR = Path(__file__).resolve().parent
ASSETS_DIR = PACKAGE_DIR / "assets"
TAGS_DIR = ASSETS_DIR / "tags"
# The checkout's root (configs/, runs/): a development convenience, absent from a wheel install.
REPO_ROOT = PACKAGE_DIR.parent

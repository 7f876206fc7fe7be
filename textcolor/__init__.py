"""textcolor: tag-conditioned line-art colorization (pix2pix + zero-centred gradient penalty)."""
from pathlib import Path

__version__ = "0.1.0"

# Data shipped beside the package in the repository (roster, vocabularies).
REPO_ROOT = Path(__file__).resolve().parent.parent
TAGS_DIR = REPO_ROOT / "tags"

"""Files: atomic writes (and, as the package grows, its one table reader and writer)."""

from spiralarms.io.atomic import atomic_path, write_json, write_text

__all__ = ["atomic_path", "write_json", "write_text"]

"""Shared by the bench scripts: replace one ``## section`` of a markdown file with fresh results."""

from __future__ import annotations

from pathlib import Path


def replace_section(path: str, heading: str, text: str) -> None:
    """Put ``text`` (starting with ``heading``) in place of that section, or append it."""
    p = Path(path)
    old = p.read_text(encoding="utf-8") if p.exists() else ""
    start = old.find(heading)
    if start >= 0:
        end = old.find("\n## ", start + 1)
        old = old[:start] + (old[end + 1:] if end >= 0 else "")
    p.write_text(old.rstrip() + "\n\n" + text, encoding="utf-8")

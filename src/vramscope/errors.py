"""One exception type for every input problem a user can cause.

The CLI turns a :class:`VramscopeError` into one clear line on stderr and exit code 2; nothing a user types
should ever produce a traceback. Messages are keys in :mod:`vramscope.i18n` so they read in English or Chinese.
"""

from __future__ import annotations


class Text:
    """A sentence fragment in both languages: a message key and its parameters, rendered when the whole sentence
    is (so an error's detail reads in the user's language, not in English inside a Chinese sentence)."""

    __slots__ = ("key", "params")

    def __init__(self, key: str, /, **params: object) -> None:
        self.key, self.params = key, params

    def render(self, lang: str = "en") -> str:
        from .i18n import t

        return t(self.key, lang, **rendered(self.params, lang))

    def __str__(self) -> str:
        return self.render("en")


def rendered(params: dict, lang: str) -> dict:
    """``params`` with every :class:`Text` (or error) among them rendered in ``lang``."""
    return {k: v.render(lang) if isinstance(v, (Text, VramscopeError)) else v for k, v in params.items()}


class VramscopeError(ValueError):
    """A bad input: names the field, what was given and what is allowed.

    ``key`` selects the message in :mod:`vramscope.i18n`; ``params`` fill it in.
    """

    def __init__(self, key: str, /, **params: object) -> None:
        self.key = key
        self.params = params
        super().__init__(self.render("en"))

    def render(self, lang: str = "en") -> str:
        from .i18n import t

        return t(self.key, lang, **rendered(self.params, lang))


def require(condition: bool, key: str, **params: object) -> None:
    """Raise ``VramscopeError(key, **params)`` unless ``condition`` holds."""
    if not condition:
        raise VramscopeError(key, **params)

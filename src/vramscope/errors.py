"""One exception type for every input problem a user can cause.

The CLI turns a :class:`VramscopeError` into one clear line on stderr and exit code 2; nothing a user types
should ever produce a traceback. Messages are keys in :mod:`vramscope.i18n` so they read in English or Chinese.

Domain code names options by their field (``field="seq"``, or :class:`Opt` inside a sentence); the sentence is
rendered for a surface: ``"cli"`` spells them as flags (``--seq``), ``"api"`` as keywords (``seq``), ``"web"``
as the form's parameters (:func:`vramscope.options.spell`). ``str(error)`` is the Python API's spelling.
"""

from __future__ import annotations


class Text:
    """A sentence fragment in both languages: a message key and its parameters, rendered when the whole sentence
    is (so an error's detail reads in the user's language, not in English inside a Chinese sentence)."""

    __slots__ = ("key", "params")

    def __init__(self, key: str, /, **params: object) -> None:
        self.key, self.params = key, params

    def render(self, lang: str = "en", surface: str = "api") -> str:
        from .i18n import t

        return t(self.key, lang, **rendered(self.params, lang, surface))

    def __str__(self) -> str:
        return self.render("en")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Text) and (self.key, self.params) == (other.key, other.params)

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"Text({self.key!r}, **{self.params!r})"


class Phrase(str):
    """A sentence that is a plain English ``str`` where one is expected (a model's notes), and renders in either
    language as its message key: ``Phrase("n_variant", name=..., base=...)``."""

    key: str
    params: dict

    def __new__(cls, key: str, /, **params: object) -> "Phrase":
        from .i18n import t

        self = super().__new__(cls, t(key, "en", **rendered(params, "en", "cli")))
        self.key, self.params = key, params
        return self

    def render(self, lang: str = "en", surface: str = "api") -> str:
        from .i18n import t

        return t(self.key, lang, **rendered(self.params, lang, surface))

    def __reduce__(self) -> tuple:
        return (_phrase, (self.key, self.params))


def _phrase(key: str, params: dict) -> Phrase:
    return Phrase(key, **params)


class Opt:
    """An option named inside a sentence, spelled for the surface the sentence is shown on: ``Opt("method")`` is
    ``--method`` / ``method``; with a value, ``Opt("method", "lora")`` is ``--method lora`` / ``method='lora'``."""

    __slots__ = ("field", "value", "has_value", "flag")

    def __init__(self, field: str, *value: object, flag: str | None = None) -> None:
        self.field, self.has_value, self.flag = field, bool(value), flag
        self.value = value[0] if value else None

    def render(self, lang: str = "en", surface: str = "api") -> str:
        from .options import setting, spell

        if surface == "cli" and self.flag:  # an engine's own spelling (vLLM's --tensor-parallel-size)
            return self.flag + (f" {self.value}" if self.has_value else "")
        if self.has_value:
            return setting(self.field, self.value, surface)
        return spell(self.field, surface)

    def __str__(self) -> str:
        return self.render()


def rendered(params: dict, lang: str, surface: str = "api") -> dict:
    """``params`` with every :class:`Text`, :class:`Opt`, :class:`Phrase` (or error) among them rendered in ``lang`` for
    ``surface``, and a ``field`` that names an option spelled for it."""
    out = {}
    for k, v in params.items():
        if isinstance(v, (Text, Opt, Phrase, VramscopeError)):
            v = v.render(lang, surface)
        elif k == "field" and isinstance(v, str) and surface != "api" and not v.startswith("-"):
            from .options import spell

            v = spell(v, surface)
        elif k == "field" and isinstance(v, str) and surface == "web":  # a flag named by hand: the form's field
            from .options import table

            v = next((o.field for o in table().values() if v in o.flags), v)
        out[k] = v
    return out


class VramscopeError(ValueError):
    """A bad input: names the field, what was given and what is allowed.

    ``key`` selects the message in :mod:`vramscope.i18n`; ``params`` fill it in.
    """

    def __init__(self, key: str, /, **params: object) -> None:
        self.key = key
        self.params = params
        super().__init__(self.render("en"))

    def render(self, lang: str = "en", surface: str = "api") -> str:
        from .i18n import t

        return t(self.key, lang, **rendered(self.params, lang, surface))


def require(condition: bool, key: str, **params: object) -> None:
    """Raise ``VramscopeError(key, **params)`` unless ``condition`` holds."""
    if not condition:
        raise VramscopeError(key, **params)

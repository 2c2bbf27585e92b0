"""One way to find things by name: strategies, models, features and sources.

Each kind has one `Registry`; a plug-in registers itself with the registry's decorator in its
own file, and the built-ins are imported on first lookup (never at import time), so asking for
one name never loads the heavy modules of another.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from cryptoai.errors import BadInputError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names -> objects of one kind, with the built-ins loaded lazily.

    ``builtins`` are module paths whose import registers the built-in entries; user plugins
    (see `cryptoai.plugins`) register into the same registry before the lookup.
    """

    def __init__(
        self,
        kind: str,
        builtins: Iterable[str] = (),
        *,
        check: Callable[[str, object], None] | None = None,
    ) -> None:
        self.kind = kind
        self._builtins = tuple(builtins)
        self._check = check
        self._entries: dict[str, T] = {}
        self._loaded = False

    @staticmethod
    def normalize(name: str) -> str:
        """Names are case-insensitive and ``-`` equals ``_`` (``random-forest``)."""
        return name.strip().lower().replace("-", "_")

    def _load_builtins(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # first: the built-ins' own registrations come back through add()
        for module in self._builtins:
            importlib.import_module(module)

    def _load_all(self) -> None:
        """Built-ins, then the installed plugins' entry points: what a lookup can see."""
        self._load_builtins()
        from cryptoai.plugins import load_entry_points

        load_entry_points()

    def add(self, name: str, obj: T, *, replace: bool = False) -> T:
        """Register ``obj`` as ``name``; a second, different object for a name is an error.

        The built-ins are loaded first, so a plugin that takes a built-in's name is refused
        whichever was imported first."""
        self._load_builtins()
        key = self.normalize(name)
        if self._check is not None:
            self._check(name, obj)
        existing = self._entries.get(key)
        if existing is not None and not replace and not _same(existing, obj):
            raise ValueError(
                f"{self.kind} name {name!r} is already used by {_describe(existing)}; "
                "choose another name"
            )
        self._entries[key] = obj
        return obj

    def remove(self, name: str) -> T | None:
        """Forget ``name`` (tests, notebook reloads); returns what was registered, if any."""
        return self._entries.pop(self.normalize(name), None)

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of `add`: ``@registry.register("name")``."""

        def deco(obj: T) -> T:
            return self.add(name, obj)

        return deco

    def get(self, name: str) -> T:
        """The entry called ``name``; an unknown name lists the valid ones."""
        self._load_all()
        if not isinstance(name, str):
            raise BadInputError(f"{self.kind} name must be a string, not {name!r}")
        try:
            return self._entries[self.normalize(name)]
        except KeyError:
            raise BadInputError(
                f"unknown {self.kind} {name!r}: choose one of {', '.join(self.names())}"
            ) from None

    def find(self, name: str) -> T | None:
        """The entry called ``name`` if one is registered (built-ins not loaded), else None."""
        return self._entries.get(self.normalize(name))

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._load_all()
        return sorted(self._entries)

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        self._load_all()
        return isinstance(name, str) and self.normalize(name) in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())


def _same(a: object, b: object) -> bool:
    """Re-importing a module (notebook reloads, a plugin loaded twice) re-registers an equal
    object; one with the same qualified name and module (or, for a definition object, the
    same function behind it) counts as the same entry."""
    if a is b:
        return True
    with contextlib.suppress(Exception):
        if a == b:
            return True
    qa, qb = _identity(a), _identity(b)
    return qa is not None and qa == qb


def _identity(obj: object) -> tuple[str, str] | None:
    target = obj if hasattr(obj, "__qualname__") else getattr(obj, "compute", None)
    qual = getattr(target, "__qualname__", None)
    return None if qual is None else (getattr(target, "__module__", ""), qual)


def _describe(obj: object) -> str:
    module = getattr(obj, "__module__", None)
    qual = getattr(obj, "__qualname__", None)
    return f"{module}.{qual}" if module and qual else repr(obj)

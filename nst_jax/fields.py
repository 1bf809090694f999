"""Config's fields as data: each setting's declared type, choices and own check in one place, values coerced from
Python and parsed from text.

Standard library only (NumPy's bool is accepted when NumPy is loaded, without importing it), so that the command
line's parser can be built before JAX is imported.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import numbers
import os
import reprlib
import sys
from dataclasses import field
from typing import Any, Callable, Optional


def setting(default, help: str, *, choices=None, valid: Optional[Callable[[Any], bool]] = None, must: str = "",
            show: Callable[[Any], str] = str, check: Optional[Callable[[str, Any], Optional[str]]] = None):
    """A Config field: its default, its `help` (the CLI's help text) and its own rule, one of: `choices` (the
    allowed values; the CLI's choices too); `valid`, a predicate on a value that is not None, with `must`, the
    message's requirement ("NAME must be MUST, got SHOW(value)"); or `check(name, value)`, the message or None."""
    metadata = {"help": help}
    if choices is not None:
        metadata["choices"] = choices
        listed = ", ".join(choices) + (" or None" if default is None else "")
        check = lambda name, value: None if value in choices else f"{name} must be one of {listed}, got {value!r}"  # noqa: E731
    elif valid is not None:
        check = lambda name, value: None if valid(value) else f"{name} must be {must}, got {show(value)}"  # noqa: E731
    if check is not None:
        metadata["check"] = check
    return field(default=default, metadata=metadata)


def field_errors(config) -> Optional[str]:
    """The message of the first field of dataclass `config` whose value (not None) breaks its own rule (see
    `setting`); None when every field keeps its rule."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value is not None and "check" in f.metadata:
            message = f.metadata["check"](f.name, value)
            if message:
                return message
    return None


def coerce_fields(config) -> None:
    """Set every field of frozen dataclass `config` to its declared type, from notebooks too: lists and "a,b"
    strings for tuples, NumPy numbers, paths. TypeError naming the field otherwise."""
    for f in dataclasses.fields(config):
        object.__setattr__(config, f.name, as_declared(f.name, f.type, getattr(config, f.name)))


def _np_bool() -> type:
    """NumPy's bool type if NumPy is imported (a notebook's `np.bool_(True)`), else bool."""
    numpy = sys.modules.get("numpy")
    return numpy.bool_ if numpy is not None else bool


def _as_scalar(name: str, kind: str, value):
    """`value` as the scalar type named `kind` ("int", "float", "str" or "bool"); a TypeError naming the setting
    if it is not one (bools and floats are not ints, strings are not numbers; a path is a str)."""
    if kind == "str" and isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    if kind == "int" and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if kind == "float" and isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if kind == "bool" and isinstance(value, (bool, _np_bool())):
        return bool(value)
    raise TypeError(f"{name} must be {'an' if kind == 'int' else 'a'} {kind}, got {reprlib.repr(value)}")


def _parse_bool(text: str) -> bool:
    """true/false, yes/no, on/off, 1/0 (any case) as a bool; ValueError otherwise."""
    value = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
    try:
        return value[text.strip().lower()]
    except KeyError:
        raise ValueError(text) from None


_SCALARS = {"str": str, "int": int, "float": float, "bool": _parse_bool}


def field_kind(declared: str) -> tuple[str, bool]:
    """(scalar kind, whether a tuple of them) of a field's declared type, a string such as
    "Optional[tuple[float, ...]]": ("float", True)."""
    if declared.startswith("Optional["):
        declared = declared[len("Optional["):-1]
    if declared.startswith("tuple["):
        return declared[len("tuple["):].split(",")[0], True
    return declared, False


def parse_text(name: str, declared: str, text: str):
    """Setting `name`, of declared type `declared`, from text as the command line gives it: one value of the type,
    or a comma-separated list of them for a tuple ("0.5, 0.9" -> (0.5, 0.9)). TypeError naming the setting if the
    text is not one."""
    kind, many = field_kind(declared)
    try:
        if many:
            return tuple(_SCALARS[kind](v.strip()) for v in text.split(",") if v.strip())
        return _SCALARS[kind](text)
    except ValueError:
        what = f"{kind}s separated by commas" if many else f"{'an' if kind == 'int' else 'a'} {kind}"
        raise TypeError(f"{name} must be {what}, got {text!r}") from None


def as_declared(name: str, declared: str, value):
    """`value` as the field's declared type (its annotation, a string such as "Optional[tuple[float, ...]]"): a
    tuple field takes any sequence or a comma-separated string, as the command line gives it."""
    if declared.startswith("Optional[") and value is None:
        return None
    kind, many = field_kind(declared)
    if not many:
        return _as_scalar(name, kind, value)
    if isinstance(value, str):
        return parse_text(name, declared, value)
    if not isinstance(value, collections.abc.Iterable):
        raise TypeError(f"{name} must be a sequence of {kind}s or a comma-separated string, got {value!r}")
    return tuple(_as_scalar(name, kind, v) for v in value)


_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "kib": 2**10, "mib": 2**20, "gib": 2**30,
          "tib": 2**40, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}


def parse_bytes(text: str) -> int:
    """A memory size as bytes: a number and an optional unit, any case: B; KiB, MiB, GiB, TiB and K, M, G, T (powers
    of 1024, as Docker's and Java's options take them); KB, MB, GB, TB (powers of 1000). "6GiB" -> 6442450944,
    "1.5g" -> 1610612736, "2e9" -> 2000000000. ValueError for anything else, or for less than one byte."""
    text = str(text).strip()
    number = text.rstrip("bBkKmMgGtTiI ")
    unit = text[len(number):].strip().lower()
    if unit not in _UNITS:
        raise ValueError(text)
    value = float(number) * _UNITS[unit]  # ValueError for a number that is none
    if not value >= 1 or value == float("inf"):
        raise ValueError(text)
    return int(value)

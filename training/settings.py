"""Plain settings (YAML files, ``--set KEY=VALUE``) into typed dataclasses.

``dataclass_from_values`` converts every value to its field's type hint: numbers also
from text (PyYAML reads ``1e-3`` as a string, since YAML 1.1 floats need a dot),
integers only when exact, booleans only as booleans (``augment=maybe`` is refused),
lists element by element, nested dataclasses from nested mappings; text fields take
numbers as text (``--set out=2024``). Anything else is one ``ValueError`` naming the
setting, where it came from and what was received, so the main job refuses bad
settings before it writes anything.
"""

import dataclasses
import math
import typing
from types import UnionType


def dataclass_from_values(cls, values: dict, where: str, prefix: str = ""):
    """Builds the dataclass ``cls`` from plain values, each converted to its field's type.

    Args:
        cls: the dataclass (nested dataclass fields take nested mappings).
        values: field name -> plain value.
        where: where the values come from, for errors (a file name, "the overrides").
        prefix: the dotted name of ``cls`` inside the outer settings.

    Raises:
        ValueError: for an unknown setting or a value of the wrong type, naming it.
    """
    if not isinstance(values, dict):
        name = prefix.rstrip(".") or "the settings"
        raise ValueError(
            f"{name} in {where} must be a mapping of settings (name: value). Received: {values!r}"
        )
    fields = {field.name: field for field in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(
            f"Unknown setting(s) {unknown} in {where}. Known settings: {', '.join(fields)}."
        )
    return cls(
        **{
            name: _convert(value, hints[name], f"{prefix}{name}", where)
            for name, value in values.items()
        }
    )


def _convert(value, hint, name: str, where: str):
    """Converts one plain value (from YAML or ``--set``) to the type ``hint``.

    PyYAML reads ``1e-3`` as a string (YAML 1.1 floats need a dot), so numbers are
    also accepted as text; every other mismatch is one error naming the setting.
    """
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, UnionType) else ()
    if options:
        if value is None and type(None) in options:
            return None
        options = [option for option in options if option is not type(None)]
        lists = [option for option in options if typing.get_origin(option) is list]
        # ``float | list[float]``: a list reads as the list option, anything else as the first.
        hint = lists[0] if lists and isinstance(value, list | tuple) else options[0]
    if dataclasses.is_dataclass(hint):
        return dataclass_from_values(hint, value, where, f"{name}.")
    if typing.get_origin(hint) is list:
        if not isinstance(value, list | tuple):
            raise _type_error(name, "a list", value, where)
        (item,) = typing.get_args(hint)
        return [_convert(element, item, f"{name}[{i}]", where) for i, element in enumerate(value)]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _type_error(name, "true or false", value, where)
    if hint in (int, float):
        number = _number(value)
        if number is None or (hint is int and not number.is_integer()):
            kind = "an integer" if hint is int else "a number"
            raise _type_error(name, kind, value, where)
        return int(number) if hint is int else number
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # e.g. --set out=2024
        raise _type_error(name, "text", value, where)
    return value


def _number(value) -> float | None:
    """Returns ``value`` as a finite float (numbers and numeric text), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _type_error(name: str, kind: str, value, where: str) -> ValueError:
    return ValueError(f"{name} must be {kind} (in {where}). Received: {name}={value!r}")

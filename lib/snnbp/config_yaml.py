"""Reading params files: YAML with YAML 1.2 numbers (``1e-3`` is a float), no duplicate keys and no
keys that are not strings, and :class:`ConfigError`, the one-line error every params check raises.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A params file is missing or malformed; the message names file, key and expectation."""


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 floats (``1e-3``) and without silent duplicate keys."""

    yaml_implicit_resolvers = {key: list(value) for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()}

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key (a list or mapping as key): refused below
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first at line {seen[key].start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


# Exponent floats without a dot (1e-3, 5E+2), which YAML 1.1 reads as strings; the others resolve as before.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML ``text`` (see :class:`_Loader`); any error is a one-line :class:`ConfigError` naming ``source``."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = " ".join(str(exc.problem or exc.context or "syntax error").split())
        raise ConfigError(f"{source}: not valid YAML{where}: {problem}") from None
    except (yaml.YAMLError, RecursionError, ValueError, TypeError, OverflowError) as exc:
        problem = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(f"{source}: not valid YAML: {problem}") from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with string keys.

    Raises:
        ConfigError: naming the file when it is missing, not UTF-8 text, not valid YAML, holds a
            duplicate key or a key that is not a string, or is not a mapping at the top level.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the params file ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); save the file as UTF-8"
        ) from None
    content = parse_yaml(text, str(path))
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(content).__name__}")
    check_string_keys(content, str(path), "", deep=True)
    return content


def check_string_keys(mapping: dict[Any, Any], source: str, prefix: str, *, deep: bool = False) -> None:
    """Refuse keys that are not strings (``1: x``, ``null: x``), naming the section."""
    for key, value in mapping.items():
        if not isinstance(key, str):
            where = f"section '{prefix}'" if prefix else "the top level"
            raise ConfigError(
                f"{source}: key {key!r} in {where} is a {type(key).__name__}; keys must be names (strings)"
            )
        if deep and isinstance(value, dict):
            check_string_keys(value, source, f"{prefix}.{key}" if prefix else key, deep=True)
        if deep and isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    check_string_keys(
                        item, source, f"{prefix}.{key}[{index}]" if prefix else f"{key}[{index}]", deep=True
                    )

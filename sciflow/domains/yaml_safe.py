"""YAML input files read safely: like ``yaml.safe_load``, but a key given twice in one mapping is an error
(``yaml.safe_load`` silently keeps the last one), at any depth. Shared by the workflow files
(``sciflow.workflows.schema.load_yaml``) and the DiTree scenario files; here because both layers may import it."""
from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError

__all__ = ["safe_load_unique"]

_MERGE = "tag:yaml.org,2002:merge"


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` refusing a mapping that names a key twice (merged ``<<`` keys may be overridden)."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:          # an unhashable key: the base class refuses it with its own message
                    continue
                line = key_node.start_mark.line + 1
                if first is not None:
                    raise ConstructorError(None, None, f"duplicate key {key!r} (lines {first} and {line}); "
                                           f"keep one", key_node.start_mark)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def safe_load_unique(text: str) -> Any:
    """``yaml.safe_load(text)``, raising ``yaml.constructor.ConstructorError`` (a ``yaml.YAMLError`` with a
    ``problem_mark``) on a duplicate mapping key, naming the key and both lines."""
    return yaml.load(text, Loader=_UniqueKeyLoader)     # a SafeLoader subclass: no arbitrary objects

"""Reading the project's YAML files (rules, column maps, policies) into strict models.

Every error becomes one line that names the file and the field, raised as the
caller's own :class:`~telediag.errors.TelediagError` subclass.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from telediag.errors import TelediagError

M = TypeVar("M", bound=BaseModel)

#: The C loader is several times faster; both are safe loaders (no code, no objects).
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: Tags YAML resolves plain scalars to that a key must not get: the key is its text.
_TEXT_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool", "null", "timestamp")}


class TextKeyLoader(_Loader):  # type: ignore[misc,valid-type]
    """A safe loader whose mapping keys are the text written: ``01: mo`` has the key
    ``"01"`` (not 1), ``010`` stays ``"010"`` (not octal 8), ``yes`` stays ``"yes"``."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag in _TEXT_TAGS:
                key.tag = "tag:yaml.org,2002:str"
        return super().construct_mapping(node, deep)


def validation_message(path: Path, exc: ValidationError) -> str:
    """``<file>: <field.path>: <what is wrong>`` for the first error (and how many more)."""
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"] if not str(x).startswith("function-"))
    msg = err["msg"].removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{path}: {loc or '(top level)'}: {msg}{more}"


def load_yaml_model(
    path: str | Path,
    model: type[M],
    error: type[TelediagError],
    what: str,
    empty_ok: bool = False,
    text_keys: bool = False,
) -> M:
    """Read ``path`` as YAML and validate it as ``model``; raise ``error`` in one line.
    With ``text_keys``, every mapping key is the text as written (see TextKeyLoader)."""
    p = Path(path)
    try:
        data = yaml.load(
            p.read_text(encoding="utf-8"), Loader=TextKeyLoader if text_keys else _Loader
        )
    except OSError as exc:
        raise error(f"{p}: cannot read {what}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise error(f"{p}: not valid YAML: {exc}") from None
    if data is None and empty_ok:
        data = {}
    if not isinstance(data, dict):
        raise error(f"{p}: a {what} is a mapping of fields")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(validation_message(p, exc)) from None

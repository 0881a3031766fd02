"""One shallow exception tree: everything telediag raises on purpose is a TelediagError."""

from __future__ import annotations


class TelediagError(Exception):
    """Base class of every error telediag raises on purpose."""


class InputError(TelediagError):
    """An input file cannot be read or lacks a required column."""


class ColumnMapError(TelediagError):
    """A column map file is malformed or names columns that do not exist."""


class RuleFileError(TelediagError):
    """A rule file is malformed; the message names the file and the field."""


class ConfigError(TelediagError):
    """A configuration or policy file is malformed."""


class SelectionError(TelediagError):
    """A --select or --ignore pattern matches no rule of the catalog."""


class CaseStoreError(TelediagError):
    """The case store cannot be opened, or a case change is not allowed (no such case,
    closing a closed case, an outcome the policy does not know)."""

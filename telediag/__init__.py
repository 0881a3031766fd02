"""telediag: find the handset and configuration faults behind disputed mobile charges.

The public API is small; everything not listed in ``__all__`` is private.
"""

from telediag.allocator import choose_memory_pool
from telediag.callerid import decode_caller_ids
from telediag.catalog import Rule, load_rules
from telediag.errors import (
    ColumnMapError,
    ConfigError,
    InputError,
    RuleFileError,
    TelediagError,
)
from telediag.investigation import Investigation, investigate
from telediag.scan import ScanResult, scan

__version__ = "0.1.0"

# Arrow's pool for the tables telediag makes (see telediag.allocator for why).
choose_memory_pool()

__all__ = [
    "ColumnMapError",
    "ConfigError",
    "InputError",
    "Investigation",
    "Rule",
    "RuleFileError",
    "ScanResult",
    "TelediagError",
    "__version__",
    "decode_caller_ids",
    "investigate",
    "load_rules",
    "scan",
]

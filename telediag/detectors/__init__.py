"""General measurements over a rule's records: bursts, periodicity, matches, hand-overs.

Importing this package registers every detector in :data:`REGISTRY`.
"""

from telediag.detectors import burst, handover, match, periodic  # noqa: F401  (registration)
from telediag.detectors.base import REGISTRY, Candidates, DetectContext, Detector

__all__ = ["REGISTRY", "Candidates", "DetectContext", "Detector"]

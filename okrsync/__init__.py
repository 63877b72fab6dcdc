"""okrsync: keep people, reporting lines, OKRs and learning links consistent across HR systems."""

from okrsync.errors import (
    ApiError,
    AuthenticationError,
    ConfigError,
    ConnectorError,
    HierarchyError,
    OkrSyncError,
    PolicyViolation,
    RetriableApiError,
    StateError,
)
from okrsync.models import (
    AlignmentEdge,
    Cycle,
    KeyResult,
    LearningItem,
    LearningLink,
    Objective,
    OkrSet,
    OrgSnapshot,
    OrgUnit,
    Person,
)

__version__ = "0.1.0"

__all__ = [
    "AlignmentEdge",
    "ApiError",
    "AuthenticationError",
    "ConfigError",
    "ConnectorError",
    "Cycle",
    "HierarchyError",
    "KeyResult",
    "LearningItem",
    "LearningLink",
    "Objective",
    "OkrSet",
    "OkrSyncError",
    "OrgSnapshot",
    "OrgUnit",
    "Person",
    "PolicyViolation",
    "RetriableApiError",
    "StateError",
    "__version__",
]

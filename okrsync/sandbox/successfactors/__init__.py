"""SAP SuccessFactors emulator (OData v2 + OAuth SAML bearer), split by concern.

``auth`` (registered client keys, SAML assertion checks), ``odata`` (schema, literals,
``$filter``), ``query`` (paging and rendering), ``entities`` (User, EmpJob history),
``goals`` (Goal_/GoalMilestone_ per plan), ``metadata`` (EDMX) and ``emulator`` (routes).
"""

from okrsync.sandbox.successfactors.emulator import SuccessFactorsEmulator

__all__ = ["SuccessFactorsEmulator"]

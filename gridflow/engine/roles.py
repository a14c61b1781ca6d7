"""Who takes part in a case, and the unit kinds of the organisation tree: the one vocabulary.

Definitions, the loader, the service (who may report, who is staff, who sees residents' contact data)
and administration (which roles a user may hold, which kinds a unit may be) all read these names.
The groups are written out rather than derived, so a role added later is given no rights by default.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

SYSTEM_ROLE = "system"

#: Every role, with its Chinese and English name (DOMAIN.md, "Roles").
ROLE_NAMES: Mapping[str, tuple[str, str]] = MappingProxyType({
    "grid_worker": ("网格员", "grid worker"),
    "resident": ("居民", "resident"),
    "community_dispatcher": ("社区", "community dispatcher"),
    "street_dispatcher": ("街道", "street dispatcher"),
    "district_dispatcher": ("区县", "district dispatcher"),
    "department_handler": ("部门", "department handler"),
    "supervisor": ("督办", "supervisor"),
    "admin": ("管理员", "admin"),
    "hotline_operator": ("12345话务员", "hotline operator"),
    "mediator": ("人民调解员", "mediator"),
    "disaster_officer": ("灾害信息员", "disaster information officer"),
    SYSTEM_ROLE: ("系统", "system"),
})
KNOWN_ROLES = frozenset(ROLE_NAMES)

#: Roles a user account may hold: every role but the system's own.
USER_ROLES = tuple(sorted(KNOWN_ROLES - {SYSTEM_ROLE}))

#: Roles that may open a case.
REPORTER_ROLES = frozenset({"grid_worker", "resident", "hotline_operator", "community_dispatcher",
                            "street_dispatcher", "disaster_officer", "admin", SYSTEM_ROLE})

#: Roles that work cases (everyone but residents and the system).
STAFF_ROLES = frozenset({"grid_worker", "community_dispatcher", "street_dispatcher", "district_dispatcher",
                         "department_handler", "supervisor", "admin", "hotline_operator", "mediator",
                         "disaster_officer"})

#: Roles that contact or visit residents and therefore see names, phones and exact addresses.
CONTACT_ROLES = frozenset({"resident", "grid_worker", "community_dispatcher", "department_handler",
                           "hotline_operator", "mediator"})

#: The kinds of unit in the organisation tree, from the top down, then departments beside it.
UNIT_KINDS = ("city", "district", "street", "community", "grid", "department")

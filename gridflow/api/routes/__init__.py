"""HTTP routes: each parses, resolves the caller, calls one service function and returns a schema."""

#: Every route of the versioned API lives under this prefix (set on each router, so route templates —
#: e.g. in request metrics — carry it).
API_PREFIX = "/api/v1"

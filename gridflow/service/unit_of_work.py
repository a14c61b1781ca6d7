"""The unit of work the use cases are written against.

This is the port (``ports.UnitOfWork``): the SQL one is ``adapters.unit_of_work.SqlUnitOfWork``,
an in-memory one for unit tests is in ``tests/unit/fakes.py``.
"""

from __future__ import annotations

from .ports import UnitOfWork

__all__ = ["UnitOfWork"]

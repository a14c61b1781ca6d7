"""A unit of work: one transaction, rolled back unless ``commit()`` is called."""

from __future__ import annotations

from sqlalchemy.exc import OperationalError

from ..adapters.db import Database, DatabaseUnavailable
from ..adapters.repository import CaseRepository


class UnitOfWork:
    def __init__(self, db: Database, *, write: bool = True) -> None:
        self.db = db
        self.write = write
        self.committed = False

    def __enter__(self) -> "UnitOfWork":
        try:
            self.session = self.db.session(self.write)
            self.cases = CaseRepository(self.session)
        except OperationalError as exc:  # pragma: no cover - connect errors surface on first use
            raise DatabaseUnavailable(f"database unreachable: {exc.orig}") from exc
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if not self.committed and self.write:
                self.session.rollback()
        finally:
            # close() releases the connection (rolling back any read transaction) without
            # expiring loaded rows, so read-side callers can use what they fetched.
            self.session.close()

    def commit(self) -> None:
        self.session.commit()
        self.committed = True

    def rollback(self) -> None:
        self.session.rollback()

"""The SQL unit of work: one transaction, rolled back unless ``commit()`` is called.

The transaction lives on a Core connection that the hot path (every action
and timer firing) uses directly; an ORM session bound to the same connection
and transaction is created only for code that asks for ``uow.session``.
Failing to connect or to begin is ``StoreUnavailable`` (see ``Database.begin``); on SQLite a
writer queues behind this process's other writers for ``write_wait`` at most (``WriterQueue``).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session

from .ports import UnitOfWork
from .db import Database
from .repository import Definitions, SqlCaseRepository


class SqlUnitOfWork(UnitOfWork):
    def __init__(self, db: Database, definitions: Definitions, *, write: bool = True) -> None:
        self.db = db
        self.definitions = definitions
        self.write = write
        self.committed = False
        self._session: Session | None = None

    def __enter__(self) -> "SqlUnitOfWork":
        self._queue = self.db.writers if self.write else None
        if self._queue is not None:
            self._queue.acquire()  # StoreUnavailable once the short write wait has passed
        try:
            self.connection: sa.Connection
            self.connection, self._tx = self.db.begin(self.write)
        except BaseException:
            self._release()
            raise
        self.cases = SqlCaseRepository(self, self.definitions)
        return self

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = Session(bind=self.connection, expire_on_commit=False,
                                    join_transaction_mode="rollback_only")
        return self._session

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            # The raw cursor of the hot path is closed here, in this thread: left to the garbage
            # collector it could be finalised in another thread using the same pooled connection.
            self.cases.close()
            if self._session is not None:
                # close() releases without expiring loaded rows, so read-side callers keep what they fetched.
                self._session.close()
            if not self.committed and self._tx.is_active:
                self._tx.rollback()
        finally:
            try:
                self.connection.close()
            finally:
                self._release()

    def _release(self) -> None:
        if self._queue is not None:
            self._queue.release()
            self._queue = None

    def commit(self) -> None:
        if self._session is not None:
            self._session.flush()
        self._tx.commit()
        self.committed = True

    def rollback(self) -> None:
        if self._session is not None:
            self._session.expunge_all()
        self._tx.rollback()

"""``gridflow users set-password``: a console password asked twice without echo, stored as an argon2 hash."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gridflow.adapters.orm import User
from gridflow.cli import app as cli
from gridflow.service import sessions
from gridflow.service.auth import Unauthorized


class NoThrottle:
    def retry_after(self, rule, *key):
        return None

    def hit(self, rule, *key):
        return None


@pytest.fixture
def db(make_app, sqlite_url, monkeypatch):
    monkeypatch.delenv("GRIDFLOW_DATABASE_URL", raising=False)
    make_app(sqlite_url).close()
    return sqlite_url.removeprefix("sqlite:///")


def run(db: str, user: str, typed: str):
    return CliRunner().invoke(cli, ["users", "set-password", user, "--db", db], input=typed,
                              catch_exceptions=False)


def test_set_password_stores_an_argon2_hash_that_signs_the_user_in(make_app, db):
    out = run(db, "cd-1", "a-new-secret\na-new-secret\n")
    assert out.exit_code == 0, out.output
    assert "a-new-secret" not in out.output  # never echoed
    gf = make_app(f"sqlite:///{db}")
    with gf.services.uow(write=False) as uow:
        assert uow.session.get(User, "cd-1").password_hash.startswith("$argon2id$")
    caller = sessions.password_attempt(gf.services, NoThrottle(), "test", "cd-1", "a-new-secret")
    assert caller.role == "community_dispatcher"
    with pytest.raises(Unauthorized):
        sessions.password_attempt(gf.services, NoThrottle(), "test", "cd-1", "gridflow-demo")


def test_set_password_refuses_an_unknown_user_and_a_short_password(db):
    unknown = run(db, "nobody", "a-new-secret\na-new-secret\n")
    assert unknown.exit_code == 1 and "no user 'nobody'" in unknown.output
    short = run(db, "cd-1", "short\nshort\n")
    assert short.exit_code == 1 and "at least 8 characters" in short.output


def test_setting_a_password_signs_the_users_open_sessions_out(make_app, db):
    gf = make_app(f"sqlite:///{db}")
    opened = sessions.sign_in(gf.services, NoThrottle(), "test", api_key="demo-community")
    assert sessions.resume(gf.services, opened.session_id) is not None
    sessions.set_password(gf.services, "cd-1", "a-new-secret")
    assert sessions.resume(gf.services, opened.session_id) is None

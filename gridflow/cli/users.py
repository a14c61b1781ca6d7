"""``gridflow users``: console passwords for users."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import DbOption, console, friendly, wired

users_app = typer.Typer(no_args_is_help=True, help="Users of the console.")


@users_app.command("set-password")
@friendly
def set_password(user: Annotated[str, typer.Argument(help="the user's id, e.g. cd-1")],
                 db: DbOption = None) -> None:
    """Set a user's console password (asked twice, not echoed; stored as an argon2 hash). The user's open
    console sessions end."""
    from ..service.sessions import set_password as store

    password = typer.prompt("new password", hide_input=True, confirmation_prompt=True)
    gf = wired(db)
    try:
        store(gf.services, user, password)
    finally:
        gf.close()
    console.print(f"[green]ok[/]: password set for {user}; their console sessions were signed out")

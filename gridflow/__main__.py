"""``python -m gridflow`` is the ``gridflow`` command."""

from .cli import main

main()

"""The `regen` command line: thin wrappers over the API. Results on stdout, diagnostics on
stderr, `--json` for machines, errors as one line and a non-zero exit.

Commands live with their nouns: `reports` (report, ask, compare, logs, serve), `words`
(classify, search), `index` (index ..., db ...), `evals` (train, eval ..., quality ...);
importing them registers them on `app`.
"""

from __future__ import annotations

import sys

from regen.cli import evals, index, reports, words  # noqa: F401 - registers the commands
from regen.cli.common import _err, app
from regen.errors import RegenError

__all__ = ["app", "main"]


def _expected(exc: BaseException) -> bool:
    """A RegenError, or a store's own error. The stores are not imported for this (a command
    that never opened one cannot have raised its error): `regen --help` stays light."""
    kinds: list[type[BaseException]] = [RegenError]
    for module, name in (("db", "DatabaseError"), ("index", "IndexStoreError")):
        if module in sys.modules:
            kinds.append(getattr(sys.modules[module], name))
    return isinstance(exc, tuple(kinds))


def main() -> None:
    """Console entry point: RegenError and store errors become one line and exit code 1."""
    try:
        app()
    except Exception as exc:
        if not _expected(exc):
            raise
        _err(f"error: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)

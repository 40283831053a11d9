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


def main() -> None:
    """Console entry point: RegenError and store errors become one line and exit code 1."""
    from db import DatabaseError
    from index import IndexStoreError

    try:
        app()
    except (RegenError, DatabaseError, IndexStoreError) as exc:
        _err(f"error: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)

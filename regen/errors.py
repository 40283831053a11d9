"""One small error hierarchy. Messages give the value, the expectation and the fix."""

from __future__ import annotations

from typing import Any


class RegenError(Exception):
    """Base of every error regen raises on purpose; the CLI prints it as one line."""


class ECGReadError(RegenError):
    """A recording could not be read or is not a usable ECG (names the file and the field)."""


class DataError(RegenError):
    """A corpus folder, metadata table or report table is missing or malformed."""


class ConfigError(RegenError):
    """A setting, flag or config file value is invalid."""


class IndexMismatchError(RegenError):
    """An index was built by another encoder, or the home has no usable index."""


class StorageError(RegenError):
    """The home's files cannot be written (disk full, read-only, permissions)."""


class MissingDependencyError(RegenError):
    """An optional dependency is not installed; the message gives the install command."""


class LLMError(RegenError):
    """The LLM could not be asked (HTTP error, timeout) or its reply was not usable."""


class InvalidReplyError(LLMError):
    """The reply was not in the format asked for or failed a check."""


def require(module: str, extra: str, alternative: str = "") -> Any:
    """Import an optional dependency or raise with the exact install command (and, when given,
    an `alternative` that needs no install, e.g. "or use --engine local")."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module!r} is needed for this; install it with: pip install 'regen[{extra}]'"
            + (f", {alternative}" if alternative else "")
        ) from exc


class BadRequest(RegenError):
    """An HTTP request the service cannot use; its message is the 400 body."""


class Forbidden(RegenError):
    """An HTTP request for something the settings do not allow; its message is the 403 body."""


class QuestionError(RegenError):
    """A question that cannot be answered as asked (its kind, or the number of ECGs given)."""


class TooManyJobs(RegenError):
    """A server's bounded scan-job queue is full (`scan_max_jobs` queued or running)."""

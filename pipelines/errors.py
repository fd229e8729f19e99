"""Errors of the platform: one base class, one subclass per kind.

Every error carries the context it happened in (member, dataset, period, file, row,
column) and says whether trying again can help. The CLI turns them into one-line messages;
Airflow tasks spend retries only on errors marked ``retryable``.
"""

from __future__ import annotations


class InsurShareError(Exception):
    """Base of every error the platform raises on purpose."""

    retryable = False

    def __init__(self, message: str, *, hint: str = "", **context: object) -> None:
        self.message = message
        self.hint = hint
        self.context = {k: v for k, v in context.items() if v is not None}
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class ConfigError(InsurShareError):
    """The platform is not set up as the command needs (paths, keys, catalog)."""


class ContractError(InsurShareError):
    """A dataset contract in schemas/ is malformed or asked for in a version that does not exist."""


class SubmissionError(InsurShareError):
    """A submission cannot be accepted for intake (unknown member, bad period, missing file)."""


class NotFound(InsurShareError):
    """A submission, member or table that was asked for does not exist."""


class QueryError(InsurShareError):
    """A read-only query failed (bad SQL, unknown snapshot, attempted write)."""


class LakeBusy(InsurShareError):
    """The catalog was locked by another writer or a commit conflicted; trying again helps."""

    retryable = True


class FileRejected(InsurShareError):
    """A submitted file fails a submission-level check (see schemas/submission.yaml)."""

    def __init__(self, check_id: str, message: str, *, hint: str = "", **context: object) -> None:
        self.check_id = check_id
        super().__init__(message, hint=hint, **context)


def is_retryable(exc: BaseException) -> bool:
    """Whether trying the same work again can succeed: busy catalogs and I/O hiccups can."""
    if isinstance(exc, InsurShareError):
        return exc.retryable
    return isinstance(exc, (OSError, TimeoutError)) and not isinstance(
        exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError))

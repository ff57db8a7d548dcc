"""One tree of errors; third-party exceptions are mapped to it at the edges.

    RecommenderError             every error the CLI turns into "Error: <what> (<fix>)"
    ├── ConfigError              bad flags, plan files, SLO strings, payload files
    ├── EndpointError            the endpoint cannot be reached or rejects the payload
    ├── AwsError                 an AWS API call failed (credentials, region, permissions)
    ├── LoadTestError            the Locust subprocess failed or produced no data
    ├── RunDirError              a run directory is missing, incomplete or of another schema
    ├── Declined                 the user answered "no" when asked to go on; nothing was done
    └── InsufficientDataError    the measurements cannot support a capacity estimate

Each error carries a `hint` (how to fix it) kept apart from the message, so the CLI can
print one line and tests can check both halves, and an exit code (`ExitCode`).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What the exit status tells a script (the README's "Exit codes" table)."""

    OK = 0  # a recommendation was made (compare: no regression; simulate: within budget)
    FAILED = 1  # no recommendation, unusable run data, a regression, over budget, declined
    USAGE = 2  # bad flags, plan, SLO or payload: nothing was started
    SLO_FAILED_AT_FIRST_STAGE = 3  # every stage failed: capacity is below the lowest rate
    ENDPOINT = 4  # the endpoint or AWS refused us or could not be reached
    INTERRUPTED = 130  # Ctrl-C or SIGTERM: what was measured is kept


class RecommenderError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code: int = ExitCode.FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = f"{self.message} ({self.hint})" if self.hint else self.message
        return " ".join(text.split())


class ConfigError(RecommenderError):
    """The user's input is invalid; nothing was started."""

    exit_code = ExitCode.USAGE


class EndpointError(RecommenderError):
    """The endpoint is unreachable or refuses our requests."""

    exit_code = ExitCode.ENDPOINT


class LoadTestError(RecommenderError):
    """The load generator failed."""


class RunDirError(RecommenderError):
    """A run directory cannot be read."""


class Declined(RecommenderError):
    """Asked to confirm, the user said no: nothing was sent or changed."""


class InsufficientDataError(RecommenderError):
    """The run does not hold enough data to answer."""


class AwsError(RecommenderError):
    """An AWS call failed: credentials, region, permissions, throttling, a missing resource."""

    exit_code = ExitCode.ENDPOINT

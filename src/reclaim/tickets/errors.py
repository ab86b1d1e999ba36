"""Jira failures, in reclaim's one exception tree, each message ending with the fix."""

from __future__ import annotations

__all__ = [
    "CreateOutcomeUnknown",
    "JiraError",
    "JiraRequestError",
    "JiraUnavailableError",
]

from collections.abc import Mapping

from reclaim.errors import ExecutionError

_FIXES = {
    400: "correct the request fields named above (see `reclaim jira check`)",
    401: "check the Jira credentials "
    "(RECLAIM_JIRA_EMAIL + RECLAIM_JIRA_API_TOKEN, or RECLAIM_JIRA_PAT)",
    403: "give the Jira user the permission named above in that project, or use another account",
    404: "check the project key, issue key or Jira URL; the user may also lack browse permission",
    409: "another update raced this one; run again",
    413: "the issue hit a per-issue limit (comments, links); close or trim it in Jira",
    422: "a Jira configuration problem blocks this (workflow, screen or field scheme); "
    "ask a Jira admin",
}


class JiraError(ExecutionError):
    """Jira could not complete the request."""


class JiraRequestError(JiraError):
    """Jira refused the request; sending it again would fail the same way."""

    def __init__(
        self,
        method: str,
        path: str,
        status: int,
        messages: tuple[str, ...] = (),
        field_errors: Mapping[str, str] | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.messages = messages
        self.field_errors = dict(field_errors or {})
        details = list(messages) + [f"{k}: {v}" for k, v in self.field_errors.items()]
        text = f"Jira refused {method} {path} (HTTP {status})"
        if details:
            text += ": " + "; ".join(details)
        fix = _FIXES.get(status, "see Jira's message above")
        super().__init__(text, fix=fix)


class JiraUnavailableError(JiraError):
    """Jira kept failing or rate-limiting after every retry."""

    def __init__(self, method: str, path: str, attempts: int, last: str) -> None:
        self.method = method
        self.path = path
        self.attempts = attempts
        super().__init__(
            f"Jira did not answer {method} {path} after {attempts} attempts (last: {last})",
            fix="wait and run again; the run resumes where it stopped",
        )


class CreateOutcomeUnknown(JiraError):
    """A create may or may not have happened: the request was sent but no answer came back."""

    def __init__(self, path: str, cause: str) -> None:
        self.path = path
        super().__init__(
            f"Jira may have created the issue(s) of POST {path}, but the answer was lost ({cause})",
            fix="do not create again; search for the fingerprint label first "
            "(reclaim does this on resume)",
        )

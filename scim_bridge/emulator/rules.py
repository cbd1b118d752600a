"""SonarQube's validation rules for logins, names, e-mails, SCM accounts and group names, with its messages
(docs/sonarqube.md SQ6, SQ7, SQ29, SQ18).

Functions named `validate_*` append messages to a list and say whether the value is usable, because
SonarQube's user updater collects every problem into one 400 answer; `check_*` raise at the first problem.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from scim_bridge.emulator.model import bad_request

if TYPE_CHECKING:
    from collections.abc import Iterable

LOGIN_MIN_LENGTH = 2
LOGIN_MAX_LENGTH = 255
NAME_MAX_LENGTH = 200
EMAIL_MAX_LENGTH = 100
GROUP_NAME_MAX_LENGTH = 255

# Java's `\w` without the Unicode flag: ASCII letters, digits and underscore.
_WORD_CHARACTER = re.compile(r"[A-Za-z0-9_]")
_LOGIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-@]+")
_LEGACY_FORBIDDEN_FIRST = frozenset(".-_@")

# RFC 822 address as `InternetAddress.validate()` accepts it (v1): dot-atoms or quoted local part, a domain.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\uffff]+"
_QUOTED = r'"(?:[^"\\\r\n]|\\.)*"'
_WORD = rf"(?:{_ATOM}|{_QUOTED})"
_RFC822 = re.compile(rf"{_WORD}(?:\.{_WORD})*@(?:{_ATOM}(?:\.{_ATOM})*|\[[^\[\]\\]*\])")

# Hibernate Validator's `@Email` (v2): local part and domain checked separately, case-insensitively.
_BEAN_LOCAL_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~\u0080-\uffff-]"
_BEAN_LOCAL_QUOTED = r'"(?:[a-z0-9!#$%&\'*.(),<>\[\]:;  @+/=?^_`{|}~\u0080-\uffff-]|\\\\|\\")+"'
_BEAN_LOCAL = re.compile(
    rf"(?:{_BEAN_LOCAL_ATOM}+|{_BEAN_LOCAL_QUOTED})(?:\.(?:{_BEAN_LOCAL_ATOM}+|{_BEAN_LOCAL_QUOTED}))*",
    re.IGNORECASE,
)
_BEAN_DOMAIN_CHAR = r"[a-z\u0080-\uffff0-9!#$%&'*+/=?^_`{|}~]"
_BEAN_LABEL = rf"(?:{_BEAN_DOMAIN_CHAR}-*)*{_BEAN_DOMAIN_CHAR}+"
_BEAN_DOMAIN = re.compile(
    rf"{_BEAN_LABEL}+(?:\.{_BEAN_LABEL}+)*|\[[0-9]{{1,3}}(?:\.[0-9]{{1,3}}){{3}}\]|\[IPv6:[0-9a-f:.]+\]",
    re.IGNORECASE,
)


def validate_login(login: str | None, messages: list[str], *, legacy_first_character: bool) -> bool:
    """SonarQube's login rules; 9.9 forbids `.-_@` first, later versions demand `_` or an alphanumeric."""
    if not login:
        messages.append("Login can't be empty")
        return False
    problem = _login_problem(login, legacy_first_character=legacy_first_character)
    if problem is not None:
        messages.append(problem)
        return False
    return True


def _login_problem(login: str, *, legacy_first_character: bool) -> str | None:
    if len(login) < LOGIN_MIN_LENGTH:
        return f"Login is too short (minimum is {LOGIN_MIN_LENGTH} characters)"
    if len(login) > LOGIN_MAX_LENGTH:
        return f"Login is too long (maximum is {LOGIN_MAX_LENGTH} characters)"
    if legacy_first_character and login[0] in _LEGACY_FORBIDDEN_FIRST:
        return "Login should not start with .-_@"
    if not legacy_first_character and not _WORD_CHARACTER.fullmatch(login[0]):
        return "Login should start with _ or alphanumeric."
    if not _LOGIN.fullmatch(login):
        return "Login should contain only letters, numbers, and .-_@"
    return None


def validate_name(name: str | None, messages: list[str]) -> bool:
    if not name:
        messages.append("Name can't be empty")
        return False
    if len(name) > NAME_MAX_LENGTH:
        messages.append(f"Name is too long (maximum is {NAME_MAX_LENGTH} characters)")
        return False
    return True


def validate_email_length(email: str | None, messages: list[str]) -> bool:
    if email is not None and len(email) > EMAIL_MAX_LENGTH:
        messages.append(f"Email is too long (maximum is {EMAIL_MAX_LENGTH} characters)")
        return False
    return True


def validate_password(password: str | None, messages: list[str]) -> bool:
    if not password:
        messages.append("Password can't be empty")
        return False
    return True


def is_valid_v1_email(email: str | None) -> bool:
    """The v1 web-service check: absent or empty passes, anything else must be an RFC 822 address."""
    return not email or _RFC822.fullmatch(email) is not None


def is_valid_bean_email(email: str) -> bool:
    """Hibernate Validator's `@Email`: an empty value passes (a size constraint catches it)."""
    if not email:
        return True
    local, at, domain = email.rpartition("@")
    if not at or len(local) > 64 or len(domain) > 255:
        return False
    labels_fit = all(len(label) <= 63 for label in domain.split("."))
    return (
        labels_fit and _BEAN_LOCAL.fullmatch(local) is not None and _BEAN_DOMAIN.fullmatch(domain) is not None
    )


def check_scm_accounts_format(accounts: Iterable[str]) -> None:
    """The web-service checks on SCM accounts: no surrounding whitespace, no duplicate."""
    seen: set[str] = set()
    for account in accounts:
        if account != account.strip():
            raise bad_request(f"SCM account cannot start or end with whitespace: '{account}'")
        if account in seen:
            raise bad_request(f"Duplicate SCM account: '{account}'")
        seen.add(account)


def sanitize_scm_accounts(accounts: Iterable[str]) -> tuple[str, ...]:
    """Blank entries dropped, duplicates removed, sorted case-insensitively."""
    return tuple(sorted({account for account in accounts if account}, key=lambda a: (a.lower(), a)))


def check_group_name(name: str | None) -> None:
    if not name or not name.strip():
        raise bad_request("Group name cannot be empty")
    if len(name) > GROUP_NAME_MAX_LENGTH:
        raise bad_request(f"Group name cannot be longer than {GROUP_NAME_MAX_LENGTH} characters")
    if is_anyone(name):
        raise bad_request("Anyone group cannot be used")


def is_anyone(group_name: str) -> bool:
    """`Anyone` is a virtual group; SonarQube matches its name ignoring case."""
    return group_name.lower() == "anyone"


def avatar(email: str | None) -> str | None:
    """The Gravatar hash SonarQube shows for users with an e-mail."""
    if not email:
        return None
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()

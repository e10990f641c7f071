"""Typed readers of environment variables, the only place the pipeline and the API parse one.

Every reader works the same way: a value is stripped, an empty or unset variable means the default, and a bad value
raises ``SettingsError`` naming the variable and what it must be. Standard library only, like the rest of ``core``,
so the API can import it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path

_SOURCE_ROOT = Path(__file__).resolve().parents[2]


class SettingsError(ValueError):
    """An environment variable holds a value the program cannot use."""


def default_data_dir() -> Path:
    """``data/`` beside the code in a source checkout; under the working directory for an installed package."""
    root = _SOURCE_ROOT if (_SOURCE_ROOT / "pyproject.toml").is_file() else Path.cwd()
    return root / "data"


def env_text(
    env: Mapping[str, str],
    variable: str,
    default: str,
    valid: Callable[[str], bool] | None = None,
    expected: str = "",
) -> str:
    """A string, or ``default``; ``valid`` rejects values with a SettingsError that says they must be ``expected``."""
    value = env.get(variable, "").strip() or default
    if valid is not None and not valid(value):
        raise SettingsError(f"{variable}={value!r} must be {expected}")
    return value


def env_matching(env: Mapping[str, str], variable: str, default: str, pattern: str, expected: str) -> str:
    """A string the whole of which matches the regular expression ``pattern``, or ``default``."""
    return env_text(env, variable, default, lambda value: re.fullmatch(pattern, value) is not None, expected)


def env_optional_text(env: Mapping[str, str], variable: str) -> str | None:
    """A string, or None when the variable is unset or empty (a feature it enables stays off)."""
    return env.get(variable, "").strip() or None


def env_word(env: Mapping[str, str], variable: str, default: str) -> str:
    """A name without spaces or slashes (an experiment, a registered model, a bucket)."""
    return env_text(
        env,
        variable,
        default,
        lambda value: not any(ch.isspace() for ch in value) and "/" not in value,
        "a single word without spaces or slashes",
    )


def env_choice(env: Mapping[str, str], variable: str, default: str, choices: tuple[str, ...]) -> str:
    """One of ``choices``, compared case-insensitively, returned as written in ``choices``."""
    value = env.get(variable, "").strip()
    if not value:
        return default
    by_folded = {choice.casefold(): choice for choice in choices}
    if value.casefold() not in by_folded:
        raise SettingsError(f"{variable}={value!r} must be one of {', '.join(choices)}")
    return by_folded[value.casefold()]


def env_path(env: Mapping[str, str], variable: str, default: Path) -> Path:
    """An absolute path (``~`` expanded), or ``default`` when the variable is unset or empty."""
    value = env.get(variable, "").strip()
    if not value:
        return default
    candidate = Path(value).expanduser()
    if not candidate.is_absolute():
        raise SettingsError(f"{variable}={value!r} must be an absolute path (for example /srv/election/data)")
    return candidate


def env_number(env: Mapping[str, str], variable: str, default: float, low: float, high: float) -> float:
    """A finite number within ``[low, high]``, or ``default`` when the variable is unset or empty."""
    value = env.get(variable, "").strip()
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        raise SettingsError(f"{variable}={value!r} must be a number between {low:g} and {high:g}") from None
    if not (math.isfinite(number) and low <= number <= high):
        raise SettingsError(f"{variable}={value!r} must be between {low:g} and {high:g}")
    return number


def env_int(env: Mapping[str, str], variable: str, default: int, low: int, high: int) -> int:
    """An integer within ``[low, high]`` (``_`` separators allowed), or ``default``."""
    value = env.get(variable, "").strip()
    if not value:
        return default
    try:
        number = int(value.replace("_", ""))
    except ValueError:
        raise SettingsError(f"{variable}={value!r} must be an integer") from None
    if not low <= number <= high:
        raise SettingsError(f"{variable}={value!r} must be between {low} and {high}")
    return number


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def env_bool(env: Mapping[str, str], variable: str, default: bool) -> bool:
    """true/false (also 1/0, yes/no, on/off), or ``default``."""
    value = env.get(variable, "").strip().lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{variable}={value!r} must be true or false")

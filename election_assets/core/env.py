"""Settings from the environment, read the same way by the pipeline and the API: a value is stripped, an empty
or unset variable means the default, and a bad value raises ``SettingsError`` naming the variable and the fix.

Standard library only, like the rest of ``core``, so the API can import it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

_SOURCE_ROOT = Path(__file__).resolve().parents[2]


class SettingsError(ValueError):
    """An environment variable holds a value the program cannot use."""


def default_data_dir() -> Path:
    """``data/`` beside the code in a source checkout; under the working directory for an installed package."""
    root = _SOURCE_ROOT if (_SOURCE_ROOT / "pyproject.toml").is_file() else Path.cwd()
    return root / "data"


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

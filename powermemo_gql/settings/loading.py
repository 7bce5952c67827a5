"""Reading the configuration: config.yaml, then POWERMEMO_* variables, refusing unknown names.

Secrets (the root token) come only from the environment: a config file is
something people commit, so a secret found in it is refused outright.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from powermemo_gql.settings.model import (
    ENV_PREFIX,
    Settings,
    SettingsError,
    config_file_var,
    read_config_file,
)

CONFIG_ENV_VAR = "POWERMEMO_CONFIG"
DEFAULT_CONFIG_FILE = Path("config.yaml")


def resolve_config_file(explicit: Path | None = None) -> Path | None:
    """--config wins, then $POWERMEMO_CONFIG, then ./config.yaml if present."""
    if explicit is not None:
        if not explicit.is_file():
            raise SettingsError(f"config file not found: {explicit}")
        return explicit
    from_env = os.environ.get(CONFIG_ENV_VAR)
    if from_env:
        path = Path(from_env)
        if not path.is_file():
            raise SettingsError(f"{CONFIG_ENV_VAR} names a missing file: {path}")
        return path
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


# POWERMEMO_* variables that are not settings: read by the CLI and the client; and the test
# suite's own, POWERMEMO_TEST_*.
OTHER_ENV_VARS = frozenset({CONFIG_ENV_VAR, "POWERMEMO_URL", "POWERMEMO_API_KEY"})
TEST_ENV_PREFIX = "POWERMEMO_TEST_"


def _did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def check_names(config_keys: list[str], environ: dict[str, str]) -> None:
    """Refuse options nothing reads: a misspelt key or variable would silently keep a
    default (POWERMEMO_ENV=production starting a development server)."""
    fields = sorted(Settings.model_fields)
    for key in config_keys:
        if key not in Settings.model_fields:
            raise SettingsError(
                f"unknown option '{key}' in the config file{_did_you_mean(key, fields)}"
            )
    variables = sorted(f"{ENV_PREFIX}{f.upper()}" for f in fields) + sorted(OTHER_ENV_VARS)
    for name in sorted(environ):
        upper = name.upper()
        if (
            upper.startswith(ENV_PREFIX)
            and not upper.startswith(TEST_ENV_PREFIX)
            and upper not in variables
        ):
            raise SettingsError(
                f"unknown environment variable {name}{_did_you_mean(name.upper(), variables)}"
            )


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from the config file, the environment and explicit overrides."""
    path = resolve_config_file(config_file)
    check_names(list(read_config_file(path)) if path else [], dict(os.environ))
    token = config_file_var.set(path)
    try:
        return Settings(**overrides)
    finally:
        config_file_var.reset(token)


def describe_error(error: SettingsError | ValidationError) -> str:
    """A configuration error in a line per problem, naming the option (no pydantic links)."""
    if isinstance(error, SettingsError):
        return str(error)
    problems = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "settings"
        problems.append(f"{where}: {problem['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)

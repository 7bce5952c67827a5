"""Settings: config.yaml, overridden by POWERMEMO_* environment variables."""

from powermemo_gql.settings.loading import describe_error, load_settings
from powermemo_gql.settings.model import ENV_PREFIX, SECRET_FIELDS, Settings, SettingsError

__all__ = [
    "ENV_PREFIX",
    "SECRET_FIELDS",
    "Settings",
    "SettingsError",
    "describe_error",
    "load_settings",
]

"""Channel settings: the provider of each channel and its options, in campaign_project.yml.

    channels:
      email: {provider: smtp, host: smtp.example.com, port: 587, tls: starttls, from: news@example.com,
              username_env: SMTP_USER, password_env: SMTP_PASSWORD, connections: 4, rate: 50}
      sms:   {provider: http, url: https://sms.example.com/v1/messages, token_env: SMS_TOKEN}
      direct_mail: {provider: file, path: exports/{campaign}_{occurrence}.csv}

Every channel defaults to `outbox`: files under target/outbox/<target>/, nothing leaves the machine.
Credentials are read from the environment variables named here, never from the file. The file
provider writes a CSV file of the project's own, never one the dbt project owns (a seed, say).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import Diagnostic, Location
from ..reader import Reader, quoted

CHANNELS = ("email", "sms", "push", "direct_mail")

_COMMON = ("rate", "retries", "backoff", "timeout")
PROVIDERS: dict[str, dict[str, Any]] = {
    "outbox": {"channels": CHANNELS, "required": (), "optional": ("from", "reply_to")},
    "smtp": {
        "channels": ("email",),
        "required": ("host", "from"),
        "optional": ("port", "tls", "username_env", "password_env", "reply_to", "connections", "in_flight", *_COMMON),
    },
    "http": {
        "channels": ("sms", "push"),
        "required": ("url",),
        "optional": ("token_env", "batch_size", "concurrency", *_COMMON),
    },
    "file": {"channels": ("direct_mail",), "required": ("path",), "optional": ()},
}
_CREDENTIALS = {"smtp": ("username_env", "password_env"), "http": ("token_env",)}
_TEXT = ("host", "from", "reply_to", "username_env", "password_env", "url", "token_env", "path")
_INTEGERS = {"port": 1, "connections": 1, "in_flight": 1, "retries": 0, "batch_size": 1, "concurrency": 1}
_NUMBERS = {"rate": 0.001, "backoff": 0.0, "timeout": 0.001}
DEFAULTS = {
    "port": 25,
    "tls": "none",
    "connections": 1,
    "in_flight": 50,
    "rate": None,
    "retries": 5,
    "backoff": 1.0,
    "timeout": 30.0,
    "batch_size": 100,
    "concurrency": 1,
    "from": "campaigns@localhost",
}


@dataclass(frozen=True)
class ChannelSettings:
    channel: str
    provider: str
    options: dict[str, Any] = field(default_factory=dict)
    locations: dict[str, Location] = field(default_factory=dict, compare=False)  # of each option's value

    def get(self, key: str) -> Any:
        return self.options.get(key, DEFAULTS.get(key))

    def missing_credentials(self) -> list[Diagnostic]:
        """The environment variables this provider reads that are not set, where they are named."""
        return [
            Diagnostic(
                self.locations.get(key),
                f"environment variable {self.options[key]} ({key} of the {self.channel} channel) is not set",
            )
            for key in _CREDENTIALS.get(self.provider, ())
            if key in self.options and self.options[key] not in os.environ
        ]


def check_channels(r: Reader, raw: Any, project) -> dict[str, ChannelSettings]:
    """The `channels:` mapping, every channel with its provider (outbox when not configured)."""
    settings = {channel: ChannelSettings(channel, "outbox") for channel in CHANNELS}
    if raw is None:
        return settings
    if r.mapping(("channels",), raw, "channels", optional=CHANNELS) is None:
        return settings
    for channel, spec in raw.items():
        if channel not in CHANNELS:
            continue
        path = ("channels", channel)
        if not isinstance(spec, dict) or "provider" not in spec:
            r.error(
                path,
                f'channel {channel} needs "provider" ({", ".join(p for p in PROVIDERS if channel in PROVIDERS[p]["channels"])})',
            )
            continue
        provider = r.choice(
            path + ("provider",),
            spec["provider"],
            "provider",
            [p for p in PROVIDERS if channel in PROVIDERS[p]["channels"]],
        )
        if provider is None:
            continue
        schema = PROVIDERS[provider]
        if (
            r.mapping(
                path,
                spec,
                f"{provider} settings of {channel}",
                required=("provider", *schema["required"]),
                optional=schema["optional"],
            )
            is None
        ):
            continue
        options = {k: v for k, v in spec.items() if k != "provider"}
        if not all(_check_option(r, path + (key,), key, value) for key, value in options.items()):
            continue
        problem = provider == "file" and extract_path_problem(options["path"], project, template=True)
        if problem:
            r.error(path + ("path",), problem)
        else:
            settings[channel] = ChannelSettings(
                channel, provider, options, {key: r.at(path + (key,)) for key in options}
            )
    return settings


def _check_option(r: Reader, path, key: str, value: Any) -> bool:
    if key in _TEXT:
        return r.string(path, value, key) is not None
    if key in _INTEGERS:
        return r.integer(path, value, key, minimum=_INTEGERS[key]) is not None
    if key in _NUMBERS:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < _NUMBERS[key]:
            r.error(path, f"{key} must be a number of at least {_NUMBERS[key]:g}, not {quoted(value)}")
            return False
        return True
    if key == "tls":
        return r.choice(path, value, "tls", ("none", "starttls", "ssl")) is not None
    return True


PLACEHOLDERS = ("campaign", "occurrence", "activity", "target")
# the folders of a dbt project besides those dbt_project.yml names: dbt's defaults, and the campaigns'
OWNED_FOLDERS = ("campaigns", "templates", "macros", "snapshots", "analyses", "tests", "logs")


def extract_path_problem(path: str, project, *, template: bool = False) -> str | None:
    """What is wrong with the file provider's `path` (as written when `template`, else with its
    placeholders replaced): it must name a CSV file inside the project, symbolic links followed, and
    outside every folder the dbt project owns (models, seeds, target...) and every hidden one."""

    def problem(text: str) -> str:
        return f'path of the file provider "{path}" {text}'

    relative = PurePosixPath(path)
    if template:
        unknown = [name for name in re.findall(r"\{([^{}]*)\}", path) if name not in PLACEHOLDERS]
        if unknown:
            return problem(f"may use {{campaign}}, {{occurrence}}, {{activity}} and {{target}}, not {{{unknown[0]}}}")
    if relative.is_absolute() or path.startswith("~"):
        return problem("must be relative to the project directory")
    if ".." in relative.parts:
        return problem("must stay inside the project directory")
    if relative.suffix.lower() != ".csv":
        return problem("must name a .csv file")
    if template and len(relative.parts) > 1 and "{" in relative.parts[0]:
        return problem(
            f"must start with a folder written out, not {relative.parts[0]}: the names put in its "
            "place could be any folder"
        )
    if template and "{occurrence}" not in path:
        return problem(
            "must contain {occurrence}: each occurrence has an extract of its own (its message keys "
            "are those of every other occurrence)"
        )
    root = Path(project.root).resolve()
    resolved = (root / relative).resolve()
    if not resolved.is_relative_to(root):
        return problem("leads outside the project directory (through a symbolic link)")
    inside = resolved.relative_to(root).parts
    owned = [
        *project.model_paths,
        *project.seed_paths,
        project.target_path,
        project.packages_install_path,
        *OWNED_FOLDERS,
    ]
    for folder in (PurePosixPath(f).parts for f in owned):
        if folder and inside[: len(folder)] == folder:
            return problem(
                f"is inside {'/'.join(folder)}/, which the dbt project owns: give extracts a folder "
                "of their own (exports/, say)"
            )
    hidden = next((part for part in inside[:-1] if part.startswith(".")), None)
    if hidden:
        return problem(f"is inside the hidden folder {hidden}/: give extracts a folder of their own (exports/, say)")
    if resolved.exists() and not is_extract(resolved):
        return problem(
            "names a file that is not a direct-mail extract (its first line is not "
            "message_key,address,...): nothing is written to it"
        )
    return None


EXTRACT_COLUMNS = ["message_key", "address"]
EXTRACT_HEADER = ",".join(EXTRACT_COLUMNS).encode()


def is_extract(path: Path) -> bool:
    """Whether a file is a direct-mail extract (or what a crash left of one): its first line is ours."""
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        start = handle.read(len(EXTRACT_HEADER) + 1)
    return (
        start[: len(EXTRACT_HEADER)] == EXTRACT_HEADER
        and start[len(EXTRACT_HEADER) :] in (b",", b"\n")
        or EXTRACT_HEADER.startswith(start)
    )

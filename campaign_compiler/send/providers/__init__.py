"""Channel providers: the provider that delivers a channel's messages, from its settings."""

from __future__ import annotations

from pathlib import Path

from ...errors import Diagnostic, InvalidInput
from ...project.channels import ChannelSettings, extract_path_problem


def provider_for(settings: ChannelSettings, outbox_dir, project, names: dict[str, str], simulate: bool):
    """The provider that delivers a channel's messages (an outbox marking them simulated when simulating)."""
    from .outbox import ExtractFile, Outbox

    if simulate or settings.provider == "outbox":
        return Outbox(settings, directory=Path(outbox_dir), simulated=simulate)
    if settings.provider == "smtp":
        from .smtp import Smtp

        return Smtp(settings)
    if settings.provider == "http":
        from .http import Http

        return Http(settings)
    path = settings.get("path")
    for name, value in names.items():  # {campaign}, {occurrence}, {activity}, {target}
        path = path.replace("{" + name + "}", value)
    problem = extract_path_problem(path, project)  # the names put in: checked again, as is what exists now
    if problem:
        raise InvalidInput([Diagnostic(settings.locations.get("path"), problem)])
    return ExtractFile(settings, path=Path(project.root) / path)

"""The image and compose file as Docker reads them, for tests that cannot build or run an image."""

from __future__ import annotations

import shlex
from collections.abc import Iterator

import yaml

from common.environment import ROOT


def instructions() -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, its arguments) of every line of the Dockerfile, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            instruction, _, arguments = line.strip().partition(" ")
            yield instruction.upper(), arguments.strip()


def image_environment() -> dict[str, str]:
    """What the image's ENV instructions set, later ones over earlier ones."""
    environment: dict[str, str] = {}
    for instruction, arguments in instructions():
        if instruction == "ENV":
            environment.update(word.split("=", 1) for word in shlex.split(arguments))
    return environment


def runtime_user() -> str:
    """The user the entry point and HEALTHCHECK start as: the last USER instruction's (root when none)."""
    users = [arguments for instruction, arguments in instructions() if instruction == "USER"]
    return users[-1] if users else "root"


def compose_services() -> dict[str, dict]:
    """docker-compose.yml's services, anchors merged, `${...}` left as written."""
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]

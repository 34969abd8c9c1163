"""A renamed host keeps its deployment (a recreated container, a restored snapshot): the real actor frame, started
in-process twice with DEPLOYMENT unset and the host renamed in between, still reads what it journaled before."""

from __future__ import annotations

import json
import socket

import pytest

from common.actor import Actor
from common.config import deployment_file
from common.streams import followed
from common.transport.journal import read_envelopes
from common.transport.messages import EquityTrade
from tests.helpers.actor_frame import ActorEnvironment

TRADE = EquityTrade("SPY", 1, 500.25, 100, 1000, 100, 500.24, 500.26, 7)


@pytest.fixture
def actor_env(tmp_path, monkeypatch):
    """Settings in the environment as supervisord gives them, without DEPLOYMENT, as compose leaves it."""
    environment = ActorEnvironment(tmp_path, monkeypatch)
    monkeypatch.delenv("DEPLOYMENT")
    yield environment
    environment.restore()


def on_host(monkeypatch, name: str) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: name)


def test_a_renamed_host_keeps_its_deployment_and_what_it_journaled(actor_env, monkeypatch):
    on_host(monkeypatch, "3f2a9c1b7d4e")  # the container's id
    ingest = Actor("ingest", journaled=True)
    ingest.publisher.send([TRADE])
    ingest.publisher.close()

    on_host(monkeypatch, "9e8d7c6b5a40")  # `docker compose up` recreated it
    indicator = Actor("indicator")
    indicator.publisher.close()
    assert indicator.config.deployment == "3f2a9c1b7d4e"
    follows = followed(indicator.config.deployment, indicator.config.opted_in)
    replayed = [frame.records for frame in read_envelopes(indicator.config.journal_dir("ingest"))
                if frame.stream in follows]
    assert replayed == [[TRADE]], "what ingest journaled before the rename is still this deployment's to replay"


def test_an_explicit_deployment_wins_and_the_actor_says_which_name_it_replaced(actor_env, monkeypatch, capsys):
    on_host(monkeypatch, "lightsail-1")
    Actor("indicator").publisher.close()
    monkeypatch.setenv("DEPLOYMENT", "desk2")
    indicator = Actor("indicator")
    indicator.publisher.close()
    assert indicator.config.deployment == "desk2"
    [warning] = [line for line in map(json.loads, capsys.readouterr().out.splitlines()) if line["level"] == "warning"]
    assert (warning["deployment"], warning["kept_deployment"]) == ("desk2", "lightsail-1")
    assert warning["actor"] == "indicator" and "journals" in warning["msg"]
    assert deployment_file(indicator.config.data_dir).read_text() == "desk2\n", "the name in use is kept from now on"

"""Nothing listens beyond this host unless asked, and the status page served beyond it needs a credential (issue 25,
item 8): the settings' checks, the credential's check, and the image and compose file that publish the page."""

from __future__ import annotations

import base64

import pytest

from common.config import BIND_SETTINGS, ConfigError, load
from common.environment import Settings
from common.observe.status_server import authorized
from tests.helpers.container_image import compose_services, image_environment, runtime_user

TOKEN = "Zq8status-page-token-0123"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("name", BIND_SETTINGS)
@pytest.mark.parametrize("address", ["0.0.0.0", "::", "192.168.1.20", "streaming.example"])
def test_an_address_beyond_loopback_is_refused_at_start_naming_the_setting_and_the_opt_in(tmp_path, name, address):
    with pytest.raises(ConfigError) as refused:
        load({"STREAMING_VAR": str(tmp_path), name: address})
    message = str(refused.value)
    assert f"{name}={address!r} is not a loopback address" in message and "ALLOW_PUBLIC_BIND=true" in message


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_needs_no_opt_in_and_no_token(tmp_path, address):
    config = load({"STREAMING_VAR": str(tmp_path), **dict.fromkeys(BIND_SETTINGS, address)})
    assert config.metrics_http_host == address and config.status_page_token is None


def test_a_status_page_beyond_loopback_needs_the_token_even_when_allowed(tmp_path):
    public = {"STREAMING_VAR": str(tmp_path), "ALLOW_PUBLIC_BIND": "true", "METRICS_HTTP_HOST": "0.0.0.0"}
    with pytest.raises(ConfigError, match="METRICS_HTTP_HOST='0.0.0.0' serves the status page's market data beyond "
                                          "this host: set STATUS_PAGE_TOKEN"):
        load(public)
    assert load({**public, "STATUS_PAGE_TOKEN": TOKEN}).status_page_token == TOKEN
    bus_only = load({"STREAMING_VAR": str(tmp_path), "ALLOW_PUBLIC_BIND": "true", "BUS_HOST": "10.0.0.5"})
    assert bus_only.status_page_token is None, "the page stays on loopback: no token needed"


@pytest.mark.parametrize("value", ["short", "has a space in it somewhere", "ünïcode-is-not-a-header-value"])
def test_a_bad_token_is_refused_without_being_shown(tmp_path, value):
    with pytest.raises(ConfigError, match=r"STATUS_PAGE_TOKEN=\*\*\* is not accepted; accepted: 16 to 200") as refused:
        load({"STREAMING_VAR": str(tmp_path), "STATUS_PAGE_TOKEN": value})
    assert value not in str(refused.value)


def test_the_opt_in_is_a_switch(tmp_path):
    with pytest.raises(ConfigError, match="ALLOW_PUBLIC_BIND='maybe' is not a switch; accepted: true or false"):
        load({"STREAMING_VAR": str(tmp_path), "ALLOW_PUBLIC_BIND": "maybe"})


def test_the_token_is_masked_where_settings_are_shown_and_kept_out_of_the_configs_repr(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(f"STATUS_PAGE_TOKEN={TOKEN}\n")
    settings = Settings({"STREAMING_VAR": str(tmp_path / "var")}, env_file)
    assert settings.shown("STATUS_PAGE_TOKEN") == "***"
    config = settings.config()
    assert config.status_page_token == TOKEN and TOKEN not in repr(config)


@pytest.mark.parametrize("header, allowed", [
    (f"Bearer {TOKEN}", True),
    (f"bearer   {TOKEN} ", True),
    (basic("anyone", TOKEN), True),
    (basic("", TOKEN), True),
    (None, False),
    ("", False),
    (f"Bearer {TOKEN}x", False),
    (f"Bearer {TOKEN[:-1]}", False),
    (basic(TOKEN, "wrong"), False),
    ("Basic not*base64", False),
    ("Basic " + base64.b64encode(b"u:\xff\xfe").decode(), False),
    (f"Token {TOKEN}", False),
    (TOKEN, False),
])
def test_the_credential_is_a_bearer_token_or_basic_auths_password(header, allowed):
    assert authorized(header, TOKEN) is allowed


def test_without_a_token_every_request_is_answered():
    assert authorized(None, None) and authorized("Bearer anything", None)


def test_the_image_listens_on_its_own_loopback_unless_the_publisher_opts_in_with_a_token(tmp_path):
    """`docker run -p 9108:9108 image` publishes past any host firewall: the image alone must not listen where -p
    reaches. Compose publishes on the host's loopback, and then sets the opt-in and asks for the token."""
    environment = image_environment()
    assert "METRICS_HTTP_HOST" not in environment and "ALLOW_PUBLIC_BIND" not in environment
    assert load({**environment, "STREAMING_VAR": str(tmp_path)}).metrics_http_host == "127.0.0.1"
    for name, service in compose_services().items():
        published = service["environment"]
        assert (published["METRICS_HTTP_HOST"], published["ALLOW_PUBLIC_BIND"]) == ("0.0.0.0", "true"), name
        assert published["STATUS_PAGE_TOKEN"].startswith("${STATUS_PAGE_TOKEN:?"), "compose refuses to start without"
        assert all(port.startswith("127.0.0.1:") for port in service["ports"]), name


def test_the_image_starts_as_root_only_to_read_its_settings_and_names_the_user_it_becomes():
    assert runtime_user() == "root" and image_environment()["STREAMING_USER"] == "streaming"

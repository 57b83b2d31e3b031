"""Notifiers against a real HTTP server and a real SMTP server (aiosmtpd) on loopback."""

import pytest
from _alert_servers import Inbox, free_port, http_recorder

from crane.config.secrets import register
from crane.errors import ConfigError
from crane.orchestrate.notify import Alert, NotifyError, log_tail, resolve, send


@pytest.fixture
def web():
    server = http_recorder()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def smtp():
    aiosmtpd = pytest.importorskip("aiosmtpd.controller", reason="pip install aiosmtpd (dev)")
    inbox = Inbox()
    controller = aiosmtpd.Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


def _alert(tmp_path, **fields):
    log = tmp_path / "t.1.log"
    log.write_text("".join(f"line {i}\n" for i in range(30)) + "connect pw=hunter2-secret\n")
    base = {"event": "task_failed", "dag": "daily", "run_id": "r1", "state": "failed"}
    return Alert(**{**base, "task": "load", "error": "boom", "log_path": str(log), **fields})


def test_json_webhook_carries_dag_task_run_error_and_masked_log_tail(tmp_path, web):
    register("hunter2-secret")
    _, options = resolve({"type": "webhook", "url": f"{web.url}/hook", "log_lines": 5}, {})
    send(_alert(tmp_path), options)
    (post,) = web.posts
    body = post["json"]
    assert post["path"] == "/hook"
    assert (body["dag"], body["task"], body["run_id"], body["state"]) == (
        "daily",
        "load",
        "r1",
        "failed",
    )
    assert body["error"] == "boom"
    assert body["log_tail"] == ["line 26", "line 27", "line 28", "line 29", "connect pw=***"]


def test_slack_webhook_sends_text_and_blocks(tmp_path, web):
    named = {"ops": {"type": "slack", "url": web.url, "channel": "#data"}}
    _, options = resolve("ops", named)
    send(_alert(tmp_path), options)
    body = web.posts[0]["json"]
    assert body["text"] == "[crane] daily.load: task failed (run r1, state failed)"
    assert body["channel"] == "#data"
    assert body["blocks"][0]["type"] == "section"
    assert "error: boom" in body["blocks"][1]["text"]["text"]


def test_http_error_raises_notify_error(tmp_path, web):
    web.status = 500
    _, options = resolve({"type": "webhook", "url": web.url}, {})
    with pytest.raises(NotifyError, match="answered 500") as caught:
        send(_alert(tmp_path), options)
    assert caught.value.transient


def test_email_is_delivered_over_smtp(tmp_path, smtp):
    controller, inbox = smtp
    named = {
        "oncall": {
            "type": "email",
            "host": "127.0.0.1",
            "port": controller.port,
            "sender": "crane@test",
            "to": ["a@test", "b@test"],
        }
    }
    _, options = resolve("oncall", named)
    send(_alert(tmp_path), options)
    (got,) = inbox.wait_for(1)
    assert got["rcpt"] == ["a@test", "b@test"]
    assert got["message"]["Subject"] == "[crane] daily.load: task failed"
    text = got["message"].get_payload()
    assert "error: boom" in text and "line 29" in text


def test_email_to_a_closed_port_raises(tmp_path):
    _, options = resolve(
        {"type": "email", "host": "127.0.0.1", "port": free_port(), "to": ["x@test"]}, {}
    )
    with pytest.raises(NotifyError, match="email via 127.0.0.1"):
        send(_alert(tmp_path), options)


def test_unknown_names_and_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="did you mean 'ops'"):
        resolve("opz", {"ops": {"type": "slack", "url": "http://x"}})
    with pytest.raises(Exception, match="did you mean 'slack'"):
        resolve({"type": "slak", "url": "http://x"}, {})
    with pytest.raises(ConfigError, match="url"):
        resolve({"type": "webhook"}, {})


def test_log_tail_of_a_missing_log_is_empty(tmp_path):
    assert log_tail(tmp_path / "none.log") == []


def test_email_over_starttls_with_login(tmp_path):
    """A real STARTTLS handshake (self-signed certificate trusted via ca_file) and AUTH."""
    import ssl
    import subprocess

    controller_mod = pytest.importorskip("aiosmtpd.controller")
    from aiosmtpd.smtp import AuthResult

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    logins = []

    def authenticate(server, session, envelope, mechanism, data):
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"s3cret")

    inbox = Inbox()
    controller = controller_mod.Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticate,
        auth_require_tls=True,
    )
    controller.start()
    try:
        options = {
            "type": "email",
            "host": "127.0.0.1",
            "port": controller.port,
            "to": ["ops@test"],
            "starttls": True,
            "username": "crane",
            "password": "s3cret",
            "ca_file": str(cert),
        }
        send(_alert(tmp_path), resolve(options, {})[1])
        assert inbox.wait_for(1)[0]["rcpt"] == ["ops@test"]
        assert logins == [(b"crane", b"s3cret")]
        with pytest.raises(NotifyError, match="email via"):  # without STARTTLS: refused
            send(_alert(tmp_path), resolve({**options, "starttls": False}, {})[1])
    finally:
        controller.stop()

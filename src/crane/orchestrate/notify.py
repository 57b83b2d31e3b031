"""Notifiers: where alerts go. Slack-compatible webhooks, SMTP email, generic JSON webhooks.

Each notifier is a class registered by name in `notifiers`, with pydantic ``Options``;
a DAG names them in ``on_failure``/``on_retry``/``on_success``/``deadline.notify``::

    notifiers:
      ops: {type: slack, url: "${SLACK_WEBHOOK_URL}"}
      oncall: {type: email, host: smtp.example.com, port: 587, starttls: true,
               sender: crane@example.com, to: [oncall@example.com],
               username: crane, password: "${SMTP_PASSWORD}"}
    on_failure: [ops, oncall]
    tasks:
      - {name: load, pipeline: orders, on_retry: [{type: webhook, url: "http://hooks/x"}]}

Adding a notifier is one class plus ``notifiers.register("name")(Class())``.
Everything a notifier sends is masked (``crane.config.secrets.mask``): errors and log
tails may quote connection URLs.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from crane.config.secrets import mask
from crane.errors import ConfigError, CraneError
from crane.registry import Registry

DEFAULT_LOG_LINES = 20
SEND_TIMEOUT = 10.0  # seconds: a dead endpoint must not hold the run's end for long


class NotifyError(CraneError):
    """A notifier could not deliver (recorded; never fails the DAG run)."""

    transient = True


@dataclass
class Alert:
    """What happened, as every notifier sees it (``payload()`` is the JSON webhook body)."""

    event: str  # task_failed, task_retry, task_success, run_failed, run_success, deadline_missed
    dag: str
    run_id: str
    state: str
    task: str | None = None
    attempt: int | None = None
    error: str | None = None
    logical_date: str | None = None
    log_path: str | None = None
    log_tail: list[str] = field(default_factory=list)
    failed_tasks: list[str] = field(default_factory=list)
    detail: str | None = None  # e.g. which deadline was missed

    @property
    def subject(self) -> str:
        what = f"{self.dag}.{self.task}" if self.task else self.dag
        return f"[crane] {what}: {self.event.replace('_', ' ')}"

    def text(self) -> str:
        lines = [f"{self.subject} (run {self.run_id}, state {self.state})"]
        if self.logical_date:
            lines.append(f"logical date: {self.logical_date}")
        if self.failed_tasks:
            lines.append(f"failed tasks: {', '.join(self.failed_tasks)}")
        if self.detail:
            lines.append(self.detail)
        if self.error:
            lines.append(f"error: {self.error}")
        if self.log_tail:
            lines += [f"log ({self.log_path}), last lines:", *self.log_tail]
        return mask("\n".join(lines))

    def payload(self) -> dict[str, Any]:
        data = asdict(self)
        return json.loads(mask(json.dumps(data, default=str)))


def log_tail(path: str | Path | None, lines: int = DEFAULT_LOG_LINES) -> list[str]:
    """The last ``lines`` lines of an attempt log, masked (a missing log gives none)."""
    if not path or lines <= 0:
        return []
    try:
        with open(path, "rb") as file:
            file.seek(0, 2)
            size = file.seek(max(file.tell() - 64 * 1024, 0))
            text = file.read().decode("utf-8", "replace")
    except OSError:
        return []
    rows = text.splitlines()
    if size:  # the first line read may be cut
        rows = rows[1:]
    return [mask(r) for r in rows[-lines:]]


class NotifierOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str
    log_lines: int = Field(DEFAULT_LOG_LINES, ge=0)
    timeout: float = Field(SEND_TIMEOUT, gt=0)


class Notifier:
    """Delivers an `Alert`; raises `NotifyError` when it cannot."""

    name = ""
    Options: type[NotifierOptions] = NotifierOptions

    def send(self, alert: Alert, options: Any) -> None:
        raise NotImplementedError


notifiers: Registry[Notifier] = Registry("notifier")


def _post(url: str, body: dict[str, Any], options: Any, headers: dict[str, str]) -> None:
    import httpx

    try:
        response = httpx.post(url, json=body, headers=headers, timeout=options.timeout)
    except httpx.HTTPError as error:
        raise NotifyError(f"POST {mask(url)} failed: {error}") from None
    if response.status_code >= 300:
        raise NotifyError(
            f"POST {mask(url)} answered {response.status_code}: {mask(response.text[:200])}",
            transient=response.status_code >= 500 or response.status_code == 429,
        )


class SlackOptions(NotifierOptions):
    url: str
    channel: str | None = None
    username: str | None = None


class SlackNotifier(Notifier):
    """Slack incoming webhook (and compatible: Mattermost, Rocket.Chat): ``text`` + blocks."""

    name = "slack"
    Options = SlackOptions

    def send(self, alert: Alert, options: Any) -> None:
        text = alert.text()
        head, _, rest = text.partition("\n")
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{head}*"}}
        ]
        if rest:  # Slack caps a section text at 3,000 characters
            blocks.append(
                {"type": "section", "text": {"type": "mrkdwn", "text": f"```{rest[-2900:]}```"}}
            )
        body: dict[str, Any] = {"text": head, "blocks": blocks}
        if options.channel:
            body["channel"] = options.channel
        if options.username:
            body["username"] = options.username
        _post(options.url, body, options, {})


class WebhookOptions(NotifierOptions):
    url: str
    headers: dict[str, str] = Field(default_factory=dict)


class WebhookNotifier(Notifier):
    """Generic JSON webhook: the `Alert` as a JSON object (dag, task, run_id, state, …)."""

    name = "webhook"
    Options = WebhookOptions

    def send(self, alert: Alert, options: Any) -> None:
        _post(options.url, alert.payload(), options, options.headers)


class EmailOptions(NotifierOptions):
    host: str = "localhost"
    port: int = 25
    sender: str = "crane@localhost"
    to: list[str] = Field(min_length=1)
    starttls: bool = False  # upgrade with STARTTLS (port 587)
    ssl: bool = False  # implicit TLS (port 465)
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None  # a private CA's certificate (PEM) to verify the server


class EmailNotifier(Notifier):
    """SMTP email (smtplib); STARTTLS or implicit TLS optional, login optional."""

    name = "email"
    Options = EmailOptions

    def send(self, alert: Alert, options: Any) -> None:
        import smtplib
        import ssl
        from email.message import EmailMessage

        message = EmailMessage()
        message["Subject"], message["From"] = alert.subject, options.sender
        message["To"] = ", ".join(options.to)
        message.set_content(alert.text())
        context = ssl.create_default_context(cafile=options.ca_file)
        try:
            if options.ssl:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    options.host, options.port, timeout=options.timeout, context=context
                )
            else:
                smtp = smtplib.SMTP(options.host, options.port, timeout=options.timeout)
            with smtp:
                if options.starttls:
                    smtp.starttls(context=context)
                if options.username:
                    smtp.login(options.username, options.password or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as error:
            raise NotifyError(
                f"email via {options.host}:{options.port} failed: {mask(str(error))}"
            ) from None


notifiers.register("slack")(SlackNotifier())
notifiers.register("webhook")(WebhookNotifier())
notifiers.register("email")(EmailNotifier())


def resolve(ref: str | dict[str, Any], named: dict[str, dict[str, Any]]) -> tuple[str, Any]:
    """A callback entry → (label, validated options). Strings name ``notifiers:`` entries."""
    if isinstance(ref, str):
        if ref not in named:
            from crane.orchestrate.dag import _unknown

            raise ConfigError(_unknown("notifier", ref, named))
        label, data = ref, named[ref]
    else:
        data = ref
        label = str(data.get("type", "?"))
    if "type" not in data:
        known = ", ".join(notifiers.names())
        raise ConfigError(f"notifier {label!r}: 'type' is required ({known})")
    notifier = notifiers.get(str(data["type"]))
    try:
        return label, notifier.Options.model_validate(data)
    except ValueError as error:
        raise ConfigError(f"notifier {label!r}: {error}") from None


def send(alert: Alert, options: Any) -> None:
    """Deliver ``alert`` with one resolved notifier (adds the log tail it asks for)."""
    if alert.log_path and not alert.log_tail:
        alert.log_tail = log_tail(alert.log_path, options.log_lines)
    notifiers.get(options.type).send(alert, options)


def now_text() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def validate_refs(refs: Sequence[str | dict[str, Any]], named: dict[str, dict[str, Any]]) -> None:
    for ref in refs:
        resolve(ref, named)

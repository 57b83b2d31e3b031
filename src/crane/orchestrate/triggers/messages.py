"""Message triggers: a message on a NATS subject or a Redis pub/sub channel starts a run.

Optional extra ``crane[events]`` (``nats-py``, ``redis``); a DAG using one
without the package installed is a configuration error at start-up.

The message body, if it is a JSON object, becomes the run's parameters;
anything else arrives as ``{"message": "<text>"}``. Several schedulers on one
NATS server share a queue group, so a message starts ONE run. Redis pub/sub
delivers to every subscriber: run one scheduler with Redis triggers, or put an
``"id"`` in the message (a run is claimed per id).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from crane.errors import ConfigError

if TYPE_CHECKING:
    from crane.orchestrate.scheduler import Scheduler

NATS_URL = "nats://127.0.0.1:4222"
REDIS_URL = "redis://127.0.0.1:6379"
QUEUE_GROUP = "crane-scheduler"

# (subject or channel, params) -> None
Deliver = Callable[[str, dict[str, Any]], None]


def params_of(data: bytes) -> dict[str, Any]:
    """A JSON object body → params; anything else → ``{"message": text}``.

    >>> params_of(b'{"day": "2026-11-01"}')
    {'day': '2026-11-01'}
    >>> params_of(b"go")
    {'message': 'go'}
    """
    text = data.decode("utf-8", "replace")
    with contextlib.suppress(ValueError):
        body = json.loads(text)
        if isinstance(body, dict):
            return body
    return {"message": text}


class NatsListener:
    """Subscribes to subjects on one server from an asyncio loop on its own thread."""

    def __init__(self, url: str | None, subjects: list[str], deliver: Deliver) -> None:
        try:
            import nats  # noqa: F401
        except ImportError:
            raise ConfigError(
                "NATS triggers need the 'nats-py' package", hint="pip install 'crane[events]'"
            ) from None
        self.url, self.subjects, self.deliver = url or NATS_URL, subjects, deliver
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="crane-nats", daemon=True)

    def start(self, timeout: float = 10.0) -> NatsListener:
        self._thread.start()
        if not self.ready.wait(timeout) or self.error is not None:
            self.stop()
            raise ConfigError(f"cannot subscribe on NATS {self.url}: {self.error or 'timeout'}")
        return self

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop already ended
            if self._stop is not None:
                self._loop.call_soon_threadsafe(self._stop.set)
            else:  # still connecting: end the connect attempts
                for task in asyncio.all_tasks(self._loop):
                    self._loop.call_soon_threadsafe(task.cancel)
        self._thread.join(timeout=5)

    def _main(self) -> None:
        try:
            self._loop.run_until_complete(self._listen())
        except BaseException as error:  # reported by start()
            self.error = self.error or error
            self.ready.set()
        finally:
            self._loop.close()

    async def _listen(self) -> None:
        import nats

        async def quiet(error: Exception) -> None:  # nats-py prints errors by default
            self.error = error

        client = await nats.connect(
            self.url, connect_timeout=2, max_reconnect_attempts=-1, error_cb=quiet
        )
        self._stop = asyncio.Event()
        for subject in self.subjects:

            async def handle(msg: Any, subject: str = subject) -> None:
                self.deliver(subject, params_of(msg.data))

            await client.subscribe(subject, queue=QUEUE_GROUP, cb=handle)
        await client.flush()
        self.ready.set()
        await self._stop.wait()
        await client.drain()


class RedisListener:
    """Subscribes to channels on one Redis server from a thread."""

    def __init__(self, url: str | None, channels: list[str], deliver: Deliver) -> None:
        try:
            import redis
        except ImportError:
            raise ConfigError(
                "Redis triggers need the 'redis' package", hint="pip install 'crane[events]'"
            ) from None
        self.url, self.deliver = url or REDIS_URL, deliver
        try:
            self._client = redis.Redis.from_url(self.url)
            self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            self._pubsub.subscribe(*channels)
        except redis.RedisError as error:
            raise ConfigError(f"cannot subscribe on Redis {self.url}: {error}") from None
        self.error: BaseException | None = None  # the last connection error, if any
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._main, name="crane-redis", daemon=True)

    def start(self) -> RedisListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(Exception):
            self._pubsub.close()
            self._client.close()

    def _main(self) -> None:
        while not self._stopped.is_set():
            try:
                message = self._pubsub.get_message(timeout=0.2)
            except Exception as error:  # server restart: redis-py resubscribes on reconnect
                self.error = error
                self._stopped.wait(1.0)
                continue
            if message and message.get("type") == "message":
                channel = message["channel"]
                name = channel.decode() if isinstance(channel, bytes) else str(channel)
                data = message["data"]
                raw = data if isinstance(data, bytes) else str(data).encode()
                self.deliver(name, params_of(raw))


def start_listeners(scheduler: Scheduler) -> list[Any]:
    """One NATS/Redis listener per server, subscribed to every subject the DAGs name.

    A message carrying an ``"id"`` is claimed per DAG, so a message delivered to two
    schedulers (Redis pub/sub) still starts one run.
    """
    wanted: dict[tuple[str, str | None], dict[str, list[str]]] = {}
    for name, spec in scheduler.dags.items():
        for trigger in spec.triggers:
            if trigger.kind in ("nats", "redis"):
                subjects = wanted.setdefault((trigger.kind, trigger.url), {})
                subjects.setdefault(trigger.target, []).append(name)
    listeners: list[Any] = []
    for (kind, url), subjects in wanted.items():
        deliver = _deliverer(scheduler, kind, subjects)
        cls = NatsListener if kind == "nats" else RedisListener
        listeners.append(cls(url, list(subjects), deliver).start())
    return listeners


def _deliverer(
    scheduler: Scheduler, kind: str, subjects: dict[str, list[str]]
) -> Callable[[str, dict[str, Any]], None]:
    def deliver(subject: str, params: dict[str, Any]) -> None:
        for dag in subjects.get(subject, []):
            if "id" in params and not scheduler.state.claim(dag, kind, [str(params["id"])]):
                continue  # another scheduler took this message
            try:
                scheduler.submit(dag, {**params, "subject": subject}, kind=kind)
            except RuntimeError:
                return  # shutting down

    return deliver

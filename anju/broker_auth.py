"""Registry logins and topic rules for the embedded broker (an amqtt 0.12 plugin).

One plugin does both jobs, because the topic rules of a connection are what its login found:
at CONNECT it looks the username up in the cloud registry and checks the password against the
stored hash (in a thread: a database read and ~5 ms of hashing); a refusal is a CONNACK
"not authorized". A login may use only its own client ids (`protocols.mqtt.acl.owns_client_id`):
the session of an id, with its subscriptions and queued commands, is its login's alone. What the
account may touch is kept per client id from an accepted CONNECT to the next accepted one (a
refused CONNECT changes nothing: `anju.broker` checks the login before it touches a session),
so a PUBLISH, SUBSCRIBE or delivery costs a dict look-up and a topic match, never the database.
A credential changed or revoked in the registry takes effect at the client's next CONNECT.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from amqtt.contexts import Action, BaseContext
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from cloud.broker_accounts import BrokerAccount, authenticate
from cloud.db import make_engine, make_sessionmaker
from protocols.mqtt.acl import Access, Grant, owns_client_id, permits

log = logging.getLogger(__name__)


class RegistryAuthPlugin(BaseAuthPlugin, BaseTopicPlugin):  # type: ignore[misc]  # amqtt is untyped
    @dataclass
    class Config:
        database_url: str = ""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        url: str = self.config.database_url
        if not url:
            raise ValueError("RegistryAuthPlugin needs database_url")
        self._engine = make_engine(url)
        self._sessions = make_sessionmaker(self._engine)
        # client id -> what its current connection may touch (set at an accepted CONNECT)
        self._grants: dict[str, tuple[Grant, ...]] = {}

    def _login(self, username: str, password: str) -> BrokerAccount | None:
        with self._sessions() as session:
            return authenticate(session, username, password)

    async def authenticate(self, *, session: Session) -> bool:
        client_id = session.client_id or ""
        username = session.username or ""
        if username and not owns_client_id(username, client_id):
            log.warning("[broker] refused %r: client id %r is not its own", username, client_id)
            return False
        account = None
        if username and session.password:
            account = await asyncio.to_thread(self._login, username, session.password)
        if account is None:
            log.warning("[broker] refused %r (client %s): unknown or wrong", username, client_id)
            return False
        will = session.will_topic if session.will_flag else None
        if will is not None and not permits(account.grants, Access.WRITE, will):
            log.warning("[broker] refused %r: its Will topic %s is not its own", username, will)
            return False
        self._grants[client_id] = account.grants
        return True

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool:
        grants = self._grants.get(session.client_id or "") if session else None
        if not grants or not topic:
            return False
        access = Access.WRITE if action == Action.PUBLISH else Access.READ
        allowed = permits(grants, access, topic)
        if not allowed and action == Action.SUBSCRIBE:
            log.warning("[broker] %r may not subscribe to %s", session and session.username, topic)
        return allowed

    async def close(self) -> None:
        await asyncio.to_thread(self._engine.dispose)

"""Lookups built once per config version and shared by every plugin:
consumers by name or id, and each credential kind by what a client sends.

Consumers without an ``id`` get a stable one derived from their username or
custom_id, so ``X-Consumer-ID`` is the same on every worker and across
reloads (Kong generates UUIDs on creation; a declarative file may omit them).
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from fastgw.config.model import Config, Consumer

# A fixed namespace for the derived ids (uuid5 of the consumer's name).
_CONSUMER_NAMESPACE = uuid.UUID("5b7d1c0e-8f59-4a7e-9a55-6f3c2d0b9e11")


def _with_id(consumer: Consumer) -> Consumer:
    if consumer.id:
        return consumer
    seed = consumer.username or consumer.custom_id or ""
    return dataclasses.replace(consumer, id=str(uuid.uuid5(_CONSUMER_NAMESPACE, seed)))


class ConfigState:
    __slots__ = ("config", "consumers", "consumers_by_ref", "keyauth", "basicauth", "jwt",
                 "hmacauth", "acl_groups", "redis", "shared")

    def __init__(self, config: Config) -> None:
        self.config = config
        self.consumers: tuple[Consumer, ...] = tuple(_with_id(c) for c in config.consumers)
        # username, custom_id or id -> consumer (what plugin configs reference,
        # e.g. an ``anonymous`` consumer).
        self.consumers_by_ref: dict[str, Consumer] = {}
        # key -> (consumer, credential)
        self.keyauth: dict[str, tuple[Consumer, dict[str, Any]]] = {}
        # username -> (consumer, credential)
        self.basicauth: dict[str, tuple[Consumer, dict[str, Any]]] = {}
        # jwt key (the token's iss or configured claim) -> (consumer, credential)
        self.jwt: dict[str, tuple[Consumer, dict[str, Any]]] = {}
        # username -> (consumer, credential)
        self.hmacauth: dict[str, tuple[Consumer, dict[str, Any]]] = {}
        # consumer id -> its acl groups
        self.acl_groups: dict[str, tuple[str, ...]] = {}
        self.redis = config.gateway.redis
        # Objects plugins build once per config version (compiled regexes,
        # clients), keyed by whatever the plugin chooses.
        self.shared: dict[Any, Any] = {}
        for consumer in self.consumers:
            for ref in (consumer.username, consumer.custom_id, consumer.id):
                if ref:
                    self.consumers_by_ref.setdefault(ref, consumer)
            for cred in consumer.keyauth_credentials:
                self.keyauth[cred["key"]] = (consumer, cred)
            for cred in consumer.basicauth_credentials:
                self.basicauth[cred["username"]] = (consumer, cred)
            for cred in consumer.jwt_secrets:
                self.jwt[cred["key"]] = (consumer, cred)
            for cred in consumer.hmacauth_credentials:
                self.hmacauth[cred["username"]] = (consumer, cred)
            assert consumer.id is not None  # _with_id gave every consumer one
            self.acl_groups[consumer.id] = tuple(a["group"] for a in consumer.acls)

    def consumer(self, ref: str | None) -> Consumer | None:
        """A consumer by username, custom_id or id."""
        if not ref:
            return None
        return self.consumers_by_ref.get(ref)

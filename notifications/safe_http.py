"""Outbound HTTP to URLs that users or providers hand us (push endpoints, MMS media).

Two checks, because either alone can be fooled:

1. `allowed_url` parses a URL the way requests (urllib3) will and accepts only https on an
   allowed host, with no userinfo and no backslashes: `https://127.0.0.1\\@fcm.googleapis.com/`
   looks like Google's to `urlsplit` but connects to 127.0.0.1.
2. `public_session` connects only to public addresses: after the TCP connect, and before any
   byte is sent, the peer's address is checked, so a listed name that resolves (or is rebound
   between check and connect) to a private, loopback or link-local address gets nothing.

Loopback IP literals listed explicitly (the fakes in tests, e.g. "127.0.0.1") are the one
exception: they may use http and connect to themselves.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class PrivateAddressRefused(Exception):
    """The URL's host resolved to an address that is not on the public internet. Not an
    OSError, so urllib3 does not mistake it for a network failure to retry or wrap."""


def _loopback_literal(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_matches(host: str, allowed: Iterable[str]) -> bool:
    """`host` is one of `allowed`, or a subdomain of one."""
    host = host.lower().rstrip(".")
    return any(host == h.lower() or host.endswith("." + h.lower()) for h in allowed)


def allowed_url(url: str, allowed_hosts: Iterable[str]) -> bool:
    """Whether `url` is https (or http on a listed loopback IP literal) on an allowed host,
    parsed as the HTTP client will parse it."""
    allowed = list(allowed_hosts)
    if "\\" in url or any(ord(c) < 33 for c in url):
        return False
    try:
        parts = urllib3.util.parse_url(url)
    except urllib3.exceptions.LocationParseError:
        return False
    host = (parts.host or "").lower()
    if parts.auth is not None or "@" in (parts.netloc or "") or not host:
        return False
    if not host_matches(host, allowed):
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and _loopback_literal(host)


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _checked(connection_class):
    class PublicOnly(connection_class):
        loopback_ok: frozenset[str] = frozenset()

        def _new_conn(self):
            sock = super()._new_conn()
            peer = sock.getpeername()[0]
            if not is_public(peer) and self.host.strip("[]") not in self.loopback_ok:
                sock.close()
                raise PrivateAddressRefused(f"{self.host} resolved to a non-public address")
            return sock

    return PublicOnly


class _PublicOnlyAdapter(HTTPAdapter):
    def __init__(self, loopback_ok: frozenset[str], **kwargs):
        self.loopback_ok = loopback_ok
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        http = type("Pool", (HTTPConnectionPool,), {"ConnectionCls": _checked(HTTPConnection)})
        https = type("Pool", (HTTPSConnectionPool,), {"ConnectionCls": _checked(HTTPSConnection)})
        for pool in (http, https):
            pool.ConnectionCls.loopback_ok = self.loopback_ok
        self.poolmanager.pool_classes_by_scheme = {"http": http, "https": https}
        self.poolmanager.key_fn_by_scheme = dict(self.poolmanager.key_fn_by_scheme)


def public_session(listed_hosts: Iterable[str] = ()) -> requests.Session:
    """A requests session that connects only to public addresses, or to the loopback IP
    literals among `listed_hosts`."""
    loopback_ok = frozenset(h.strip("[]") for h in listed_hosts if _loopback_literal(h))
    session = requests.Session()
    adapter = _PublicOnlyAdapter(loopback_ok)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session

"""How the project's HTTP clients connect: one TLS context per process, the environment's proxy.

* :func:`ssl_context`: building a verifying TLS context loads the CA bundle (~55 ms of CPU
  here), and httpx builds one for every client and transport it creates, even for plain-HTTP
  loopback servers. The sampler opens a client per cell and a replica pool a transport per
  replica, so they share this one (a context is safe to share between connections).
* :func:`env_proxy`: the proxy the environment names for a URL, for code that talks to an
  ``httpx`` transport directly (``serving/replicas.py``) and so has no client to read
  ``HTTP(S)_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY`` for it. Loopback never uses one (DESIGN §8).
"""

from __future__ import annotations

import functools
import os
import ssl
import urllib.request
from urllib.parse import urlsplit

import httpx

__all__ = ["env_proxy", "ssl_context"]


def ssl_context(*, trust_env: bool = True) -> ssl.SSLContext:
    """httpx's default verifying context (certifi's bundle, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``
    when ``trust_env``), built once per process and per value of those variables."""
    if not trust_env:
        return _context(None, None)
    return _context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.cache
def _context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    return httpx.create_ssl_context(trust_env=cert_file is not None or cert_dir is not None)


def env_proxy(url: str, *, loopback: bool) -> str | None:
    """The proxy URL the environment routes ``url`` through, or ``None`` (loopback, ``NO_PROXY``,
    or no proxy variable set)."""
    if loopback:
        return None
    parts = urlsplit(url)
    if urllib.request.proxy_bypass_environment(parts.hostname or ""):
        return None
    proxies = urllib.request.getproxies_environment()
    return proxies.get(parts.scheme) or proxies.get("all")

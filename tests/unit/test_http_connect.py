"""One TLS context per process and per CA setting (http_connect.py)."""

from __future__ import annotations

import ssl

import certifi

from pytest_servecert.http_connect import ssl_context


def test_the_tls_context_is_built_once_and_verifies(monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    context = ssl_context()
    assert ssl_context() is context and ssl_context(trust_env=False) is context
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_ssl_cert_file_is_honoured_only_when_the_environment_is_trusted(monkeypatch):
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    default = ssl_context()
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    assert ssl_context() is not default  # the variable's CA file, not the cached default
    assert ssl_context(trust_env=False) is default

"""The client the cache creates: which connection settings are accepted."""

from __future__ import annotations

from typing import Any

from langchain_es_cache._common.validation import require_str
from langchain_es_cache._version import __version__

USER_AGENT = f"langchain-es-cache/{__version__}"
"""Sent with every request, so cluster operators can tell where traffic comes from."""


def client_settings(
    *,
    has_client: bool,
    es_url: str | None,
    es_cloud_id: str | None,
    es_user: str | None,
    es_api_key: str | None,
    es_password: str | None,
) -> dict[str, Any] | None:
    """Check that exactly one connection source is given.

    Returns the keyword arguments for a new client, or `None` when the caller
    passed a client of their own. Messages never include a secret.
    """
    for name, value in (
        ("es_url", es_url),
        ("es_cloud_id", es_cloud_id),
        ("es_user", es_user),
        ("es_api_key", es_api_key),
        ("es_password", es_password),
    ):
        if value is not None and require_str(name, value) == "":
            raise ValueError(f"{name} must not be empty")
    if has_client:
        given = [
            name
            for name, value in (
                ("es_url", es_url),
                ("es_cloud_id", es_cloud_id),
                ("es_user", es_user),
                ("es_password", es_password),
                ("es_api_key", es_api_key),
            )
            if value is not None
        ]
        if given:
            raise ValueError(
                "pass either client or connection settings, not both: "
                f"got client together with {', '.join(given)}"
            )
        return None
    if es_url is not None and es_cloud_id is not None:
        raise ValueError("pass es_url or es_cloud_id, not both")
    if es_url is None and es_cloud_id is None:
        raise ValueError(
            "no connection given: pass client=Elasticsearch(...), "
            "or es_url='http://host:9200' (or es_cloud_id) with es_api_key "
            "or es_user and es_password"
        )
    if (es_user is None) != (es_password is None):
        raise ValueError("es_user and es_password must be given together")
    if es_api_key is not None and es_user is not None:
        raise ValueError("pass es_api_key or es_user and es_password, not both")
    settings: dict[str, Any] = {"headers": {"user-agent": USER_AGENT}}
    if es_url is not None:
        settings["hosts"] = [es_url]
    else:
        settings["cloud_id"] = es_cloud_id
    if es_api_key is not None:
        settings["api_key"] = es_api_key
    elif es_user is not None:
        settings["basic_auth"] = (es_user, es_password)
    return settings

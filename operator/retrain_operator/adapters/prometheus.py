"""Instant queries against a Prometheus HTTP API, for canary analysis."""

from __future__ import annotations

import json
import logging
import math
import urllib.parse
import urllib.request

log = logging.getLogger(__name__)


def query(base_url: str, promql: str, timeout: float = 10.0) -> float | None:
    """The first sample's value of an instant query; None when there is none or it failed."""
    url = base_url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.loads(response.read())
    except (OSError, ValueError) as error:
        log.warning("Prometheus query failed (%s): %s", promql, error)
        return None
    data = body.get("data") or {}
    result = data.get("result")
    if data.get("resultType") == "scalar" and isinstance(result, list):
        value = result[1]
    elif isinstance(result, list) and result:
        value = (result[0].get("value") or [None, None])[1]
    else:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number

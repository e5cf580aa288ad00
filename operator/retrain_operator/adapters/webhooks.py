"""One POST to a webhook, and nothing else: its answer, or why there was none, in words that hold no secret.

An exception's text may quote the URL (aiohttp's InvalidURL does), so none is ever passed on: only
the HTTP status, or the kind of failure (refused, timed out, ...).
"""

from __future__ import annotations

import aiohttp

from .. import __version__
from ..core.notifications.retry import Answer
from ..core.notifications.targets import Target

USER_AGENT = f"retrain-operator/{__version__}"
ID_HEADER = "X-Retrain-Notification-Id"
TIMEOUT = 10.0


def session() -> aiohttp.ClientSession:
    """The notifier's connection pool; HTTPS_PROXY / NO_PROXY are honoured, as by kubectl and curl."""
    return aiohttp.ClientSession(trust_env=True)


async def post(client: aiohttp.ClientSession, target: Target, body: bytes, notification_id: str,
               timeout: float = TIMEOUT) -> Answer:
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, ID_HEADER: notification_id,
               **target.headers}
    try:
        # No redirects: a webhook that moved says so with a 3xx (not retried), and no header follows it elsewhere.
        async with client.post(target.url, data=body, headers=headers, allow_redirects=False,
                               timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            return Answer(response.status, retry_after=response.headers.get("Retry-After"))
    except TimeoutError:
        return Answer(None, f"no answer within {timeout:g}s")
    except aiohttp.ClientConnectorError as error:
        return Answer(None, f"cannot connect ({error.os_error.strerror or type(error.os_error).__name__})")
    except aiohttp.ClientError as error:
        return Answer(None, type(error).__name__)
    except Exception as error:  # never str(error): it may hold the URL
        return Answer(None, type(error).__name__)

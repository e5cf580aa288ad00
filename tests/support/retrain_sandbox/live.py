"""The sandbox's terminal view: what `kubectl get -w` and `kubectl get events -w` would show, plus
one live line with the serving state (model, canary weight, live accuracy per version).

On a terminal the live line is redrawn in place; in a log (no TTY) it is printed when it changes
and every few seconds, so the output reads well in both.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from typing import Any

from retrain_operator.core import rollout

from .cluster import LocalCluster
from .traffic import Traffic

Json = dict[str, Any]
LOG_EVERY = 10.0  # seconds between live lines when not on a terminal


def say(text: str) -> None:
    LiveView.current_clear()
    print(text, flush=True)


class LiveView:
    _active: LiveView | None = None

    def __init__(self, cluster: LocalCluster, namespace: str, policy: str):
        self.cluster, self.namespace, self.policy = cluster, namespace, policy
        self.traffic: Traffic | None = None
        self.seen: set[str] = set()
        self.tty = sys.stdout.isatty()
        self._drawn = False
        self._last_logged = (0.0, "")
        LiveView._active = self

    @classmethod
    def current_clear(cls) -> None:
        view = cls._active
        if view is not None and view._drawn:
            sys.stdout.write("\r\033[K")
            view._drawn = False

    def _line(self, status: Json) -> tuple[str, str]:
        """(the line, its part without the accuracy numbers, which change every second)."""
        current = (status.get("currentModel") or {}).get("version") or "-"
        parts = [f"{status.get('phase', '-')}", f"serving {current}"]
        rolling = status.get("rollout") or {}
        if rollout.is_active(status.get("rollout")):
            parts.append(f"canary {rolling.get('version')} at {int(rolling.get('weight') or 0)}% "
                         f"({rolling.get('phase')})")
        active = status.get("activeRun") or {}
        if active:
            parts.append(f"training {active.get('version')} ({(active.get('trigger') or {}).get('type')})")
        stable_part = " | ".join(parts)
        if self.traffic is not None:
            accuracy = self.traffic.accuracy(15.0)
            shown = ", ".join(f"{v} {a:.3f} (n={n})" for v, (a, n) in sorted(accuracy.items()) if v != "none")
            parts.append(f"live accuracy, last 15 s: {shown or '-'}")
        return " | ".join(parts), stable_part

    def poll(self) -> Json:
        body = self.cluster.policy(self.namespace, self.policy)
        status = body.get("status") or {}
        for item in self.cluster.jobs(self.namespace):
            job_status = item.get("status") or {}
            running = "Running" if job_status.get("active") else "Pending"
            state = next((c["type"] for c in job_status.get("conditions") or []
                          if c.get("type") in {"Complete", "Failed"}), running)
            key = f"job {item['metadata']['name']}: {state}"
            if key not in self.seen:
                self.seen.add(key)
                say(f"   · {key}")
        events = self.cluster.events(self.namespace, self.policy)
        for event in sorted(events, key=lambda e: (e.get("firstTimestamp") or "", e["metadata"]["name"])):
            key = f"event {event['metadata']['name']}"
            if key not in self.seen:
                self.seen.add(key)
                say(f"   · event {event.get('type')} {event.get('reason')}: {event.get('message')}")
        line, stable_part = self._line(status)
        if self.tty:
            width = shutil.get_terminal_size((120, 20)).columns
            sys.stdout.write("\r\033[K   ▸ " + line[: max(width - 6, 20)])
            sys.stdout.flush()
            self._drawn = True
        elif stable_part != self._last_logged[1] or time.monotonic() - self._last_logged[0] >= LOG_EVERY:
            self._last_logged = (time.monotonic(), stable_part)
            print(f"   ▸ {line}", flush=True)
        return body

    def until(self, done: Callable[[Json], bool], timeout: float, what: str) -> Json:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.poll()
            if done(body.get("status") or {}):
                return body
            time.sleep(0.5)
        raise TimeoutError(f"sandbox: timed out waiting for {what}\n{self.cluster.log_tail()}")

    def close(self) -> None:
        LiveView.current_clear()
        LiveView._active = None

"""How the operator scales with the number of policies, on the real control plane (issue 15).

One run starts the dev cluster (etcd, kube-apiserver with its audit log, controller manager,
scheduler, the process kubelet), SeaweedFS and ONE operator process (`python -m
retrain_operator.cli run`, with the `retrain-operator` ServiceAccount's token and the production
--max-requeue of 300 s), exactly as the integration tests do (retrain_sandbox.cluster.LocalCluster).
It then creates N cheap policies in one namespace: a far-future schedule (cron `0 0 1 1 *`), valid
storage on the real SeaweedFS with its credentials Secret, and a trainer nodeSelector no node has
(test_black_hole.py's NOWHERE), so a triggered run's pod stays Pending and costs no CPU. It measures:

  startup_all_status_s       from the first create until every policy has a status (`nextRunAt` set)
  rss_mib, rss_peak_mib      the operator process's VmRSS at the end of the idle window, and VmHWM
  cpu_percent                its CPU (user + system, % of one core) over the idle window
  idle_requests_per_policy_per_min
                             API requests by the operator's ServiceAccount during the idle window,
                             counted at the API server's audit log (distinct audit IDs: a watch that
                             spans the window counts once), per policy per minute; broken down by
                             verb and resource in the JSON (`idle_requests_by_kind`)
  trigger_to_job_p50_s, trigger_to_job_p99_s
                             from setting `retrain.mlops.dev/trigger` on one policy to its Job
                             existing, over --triggers policies one after another (each policy is
                             triggered once: a run in progress would hold a second trigger back),
                             while the others idle (test_black_hole.py's measurement)
  restart_all_status_s       the operator is SIGKILLed, every policy's status is then removed through
                             the status subresource (merge patch `{"status": null}`, while no operator
                             runs, so nothing can write it back), and a new operator process starts:
                             the seconds from its start until every policy has a status again. The
                             operator writes status only when it changes, so without the reset a
                             restarted operator leaves no trace in the objects; with it, each status
                             is proof that the new process reconciled that policy. Nothing else is
                             cleared: the triggered policies' Jobs stay, as after a real crash.

The idle window defaults to the operator's requeue (300 s), and starts half of it after the last
status: each policy's periodic reconcile falls in it once, and the first wave of them (which comes
300 s after the start-up reconciles, and with a few hundred policies takes tens of seconds to
drain) falls in its middle, not on its edge, so it is counted once, not 0, 5 or half a time.

Run: .venv/bin/python benchmarks/scale_bench.py --policies 100 [--json out.json] [--triggers 50]
     [--idle-seconds 300] [--keep] [--baseline REF] [--shards N]
With --baseline REF (a git commit, e.g. 6331452: the polling design) the same measurement runs first
with the operator of that commit (a git worktree put first on PYTHONPATH, same venv, same machine, a
cluster of its own), then with this checkout's; the report and the JSON (`baseline`, `vs_baseline`)
give both and the ratio current / baseline of each metric.
With --shards N, N operator processes run side by side (`--shard-index 0..N-1 --shard-count N`, one
per shard Deployment of the chart): rss_mib is then the largest shard's (what one replica needs),
with every shard's in rss_mib_by_shard, and cpu_percent is their sum.
Everything it starts dies with it (Ctrl-C, SIGTERM, or SIGKILL: the dev cluster's processes have
PR_SET_PDEATHSIG). Targets (issue 15, this 2-core machine): 1,000 policies on one replica in
<= 300 MiB, idle <= 0.1 request/policy/min, trigger-to-Job p99 <= 1 s, all statuses <= 60 s after
a restart. The numbers of the polling design: docs/scale.md.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MAX_REQUEUE = 300.0  # the operator's production default (cli.py --max-requeue)
FAR_FUTURE_CRON = "0 0 1 1 *"  # New Year's midnight: never during a run
OPERATOR_USER = "system:serviceaccount:retrain-system:retrain-operator"  # retrain_devcluster.cluster

# metric: (target, what it means); the ratio is measured / target (<= 1 meets it).
TARGETS: dict[str, tuple[float, str]] = {
    "rss_mib": (300.0, "<= 300 MiB for 1,000 policies on one replica"),
    "idle_requests_per_policy_per_min": (0.1, "<= 0.1 API request per policy per minute at idle"),
    "trigger_to_job_p99_s": (1.0, "trigger annotation to Job, p99 <= 1 s"),
    "restart_all_status_s": (60.0, "every policy's status within 60 s of a restart"),
}


# -- pure helpers (tests/unit/test_scale_bench.py) ------------------------------------------------------------


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between the closest ranks (numpy's default method)."""
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not within 0..100")
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def request_kind(event: dict[str, Any]) -> str:
    """`verb group/resource/subresource` of one audit event, e.g. `patch retrain.mlops.dev/retrainpolicies/status`."""
    ref = event.get("objectRef") or {}
    resource = "/".join(part for part in (ref.get("apiGroup") or "core", ref.get("resource"),
                                          ref.get("subresource")) if part)
    if not ref.get("resource"):  # a non-resource URL (/api, /version, ...)
        resource = event.get("requestURI", "").split("?")[0]
    return f"{event.get('verb', '')} {resource}"


def count_requests(lines: Iterable[str | bytes], user: str) -> collections.Counter[str]:
    """Requests by `user` in audit log lines (JSON, one event a line), by kind (request_kind).

    A request appears once per stage the policy keeps (ResponseStarted and ResponseComplete for a
    watch, ResponseComplete otherwise): it is counted once, by its auditID. Lines that are not
    complete JSON (the tail of a log still being written) are skipped."""
    seen: set[str] = set()
    kinds: collections.Counter[str] = collections.Counter()
    for line in lines:
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if (event.get("user") or {}).get("username") != user:
            continue
        audit_id = event.get("auditID", "")
        if audit_id in seen:
            continue
        seen.add(audit_id)
        kinds[request_kind(event)] += 1
    return kinds


def per_policy_per_minute(requests: int, policies: int, seconds: float) -> float:
    return requests / policies / (seconds / 60.0) if policies and seconds > 0 else float("nan")


def proc_stat_cpu_seconds(stat: str, ticks_per_second: float) -> float:
    """utime + stime of a /proc/PID/stat line, in seconds (fields 14 and 15; the name may hold spaces)."""
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / ticks_per_second


def proc_status_kib(status: str, key: str) -> int:
    """A `Key:   1234 kB` line of /proc/PID/status, in KiB."""
    for line in status.splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise KeyError(key)


COMPARED = ["rss_mib", "rss_peak_mib", "cpu_percent", "idle_requests_per_policy_per_min", "trigger_to_job_p50_s",
            "trigger_to_job_p99_s", "trigger_to_job_max_s", "startup_all_status_s", "startup_requests_per_policy",
            "restart_all_status_s", "restart_rss_mib"]


def versus(current: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float | None]:
    """current / baseline for each compared metric both runs measured (None where the baseline is 0)."""
    ratios: dict[str, float | None] = {}
    for metric in COMPARED:
        if metric in current and metric in baseline:
            ratios[metric] = round(current[metric] / baseline[metric], 4) if baseline[metric] else None
    return ratios


def ratio_table(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(metric, measured, target, ratio) rows for the metrics that have a target."""
    rows = []
    for metric, (target, _) in TARGETS.items():
        value = results.get(metric)
        if value is None:
            rows.append((metric, "-", f"{target:g}", "-"))
        else:
            rows.append((metric, f"{value:.3f}", f"{target:g}", f"{value / target:.2f}x"))
    return rows


# -- the process and the audit log --------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    return proc_stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text(), os.sysconf("SC_CLK_TCK"))


def memory_mib(pid: int, key: str = "VmRSS") -> float:
    return proc_status_kib(Path(f"/proc/{pid}/status").read_text(), key) / 1024


class AuditLog:
    """The API server's audit log, read from a byte offset (it never rotates: no --audit-log-maxsize)."""

    def __init__(self, path: Path):
        self.path = path

    def offset(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def operator_requests(self, start: int, end: int | None = None) -> collections.Counter[str]:
        with open(self.path, "rb") as handle:
            handle.seek(start)
            data = handle.read() if end is None else handle.read(end - start)
        return count_requests(data.splitlines(), OPERATOR_USER)


# -- the run ---------------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path, source: Path | None = None):
        self.args = args
        self.workdir = workdir
        self.source = source  # a checkout whose operator runs instead of this one's (--baseline)
        self.results: dict[str, Any] = {}
        self.local: Any = None
        self.scenario: Any = None
        self.names = [f"p-{index:05d}" for index in range(args.policies)]
        self.shards: list[subprocess.Popen[bytes]] = []  # the operators of shards 1..N-1 (0 is self.local's)

    def say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    def start(self) -> None:
        from retrain_sandbox.cluster import LocalCluster
        from tests.integration.conftest import Scenario

        if self.source is not None:  # read by LocalCluster.start_operator's child, at start and at restart
            os.environ["PYTHONPATH"] = os.pathsep.join(str(self.source / part) for part in ("operator", "contract"))
        self.say(f"starting the dev cluster, SeaweedFS and the operator in {self.workdir}"
                 + (f" (operator from {self.source})" if self.source else ""))
        self.local = LocalCluster(self.workdir, max_requeue=MAX_REQUEUE, operator_args=self.shard_args(0),
                                  say=self.say).start()
        self.start_shards()
        self.scenario = Scenario(self.local, self.local.seaweed.client())
        self.audit = AuditLog(self.local.dev.plane.audit_log)

    def shard_args(self, index: int) -> tuple[str, ...]:
        count = self.args.shards
        return ("--shard-index", str(index), "--shard-count", str(count)) if count > 1 else ()

    def start_shards(self) -> None:
        """Shards 1..N-1, each one more operator process beside LocalCluster's (shard 0), as the chart runs them."""
        self.shards = [self.local.spawn_operator(*self.shard_args(index), log=self.workdir / f"operator-{index}.log")
                       for index in range(1, self.args.shards)]

    def stop_shards(self) -> None:
        from retrain_sandbox.cluster import stop_process

        for process in self.shards:
            stop_process(process, kill=True)
        self.shards = []

    def pids(self) -> list[int]:
        return [self.local.operator.pid, *(process.pid for process in self.shards)]

    def stop(self) -> None:
        self.stop_shards()
        if self.local is not None:
            self.say("stopping everything")
            self.local.stop()
            self.local = None
        if self.source is not None:
            os.environ.pop("PYTHONPATH", None)

    # -- the policies ------------------------------------------------------------------------------------

    def spec(self) -> dict[str, Any]:
        from tests.integration.test_black_hole import NOWHERE

        return self.scenario.policy_spec(training={"nodeSelector": NOWHERE},
                                         triggers={"schedule": {"cron": FAR_FUTURE_CRON}})

    def statuses(self) -> dict[str, dict[str, Any]]:
        from retrain_contract.api import names

        listed = json.loads(self.local.custom.list_namespaced_custom_object(
            names.GROUP, names.VERSION, self.scenario.namespace, names.PLURAL, _preload_content=False).data)
        return {item["metadata"]["name"]: item.get("status") or {} for item in listed["items"]}

    def wait_all_status(self, started: float, what: str) -> float:
        """Seconds from `started` until every policy's status has nextRunAt (each reconcile sets it)."""
        last_report = 0.0
        while True:
            now = time.monotonic()
            done = sum(1 for status in self.statuses().values() if status.get("nextRunAt"))
            if done >= len(self.names):
                return now - started
            if now - started > self.args.status_timeout:
                raise TimeoutError(f"{what}: only {done}/{len(self.names)} policies have a status after "
                                   f"{now - started:.0f} s\n{self.local.log_tail()}")
            if now - last_report >= 15:
                self.say(f"  {what}: {done}/{len(self.names)} policies have a status ({now - started:.0f} s)")
                last_report = now
            self.check_alive()
            time.sleep(0.5)

    def check_alive(self) -> None:
        operator = self.local.operator
        if operator is None or operator.poll() is not None:
            raise RuntimeError(f"the operator exited\n{self.local.log_tail()}")
        for index, process in enumerate(self.shards, start=1):
            if process.poll() is not None:
                raise RuntimeError(f"the operator of shard {index} exited ({process.returncode}); see "
                                   f"{self.workdir / f'operator-{index}.log'}")
        self.local.dev.check_alive()

    def create(self) -> None:
        spec = self.spec()
        self.say(f"creating {len(self.names)} policies in {self.scenario.namespace}")
        offset = self.audit.offset()
        started = time.monotonic()
        for name in self.names:
            self.local.apply_policy(self.scenario.namespace, name, spec)
        created = time.monotonic() - started
        self.results["create_s"] = round(created, 2)
        self.results["startup_all_status_s"] = round(self.wait_all_status(started, "start-up"), 2)
        startup = self.audit.operator_requests(offset)
        self.results["startup_requests_by_kind"] = dict(startup.most_common())
        self.results["startup_requests_per_policy"] = round(sum(startup.values()) / len(self.names), 2)
        self.say(f"  every policy has a status {self.results['startup_all_status_s']:.1f} s after the first "
                 f"create (creating took {created:.1f} s)")

    # -- the measurements --------------------------------------------------------------------------------

    def idle(self) -> None:
        pids = self.pids()
        settle = self.args.idle_seconds / 2 if self.args.settle_seconds is None else self.args.settle_seconds
        self.say(f"settling for {settle:.0f} s")
        time.sleep(settle)
        window = self.args.idle_seconds
        self.say(f"idle window: {window:.0f} s (operator pids {pids})")
        offset, cpu, started = self.audit.offset(), sum(cpu_seconds(pid) for pid in pids), time.monotonic()
        while time.monotonic() - started < window:
            self.check_alive()
            time.sleep(min(5.0, max(0.0, window - (time.monotonic() - started))))
        elapsed = time.monotonic() - started
        cpu_used = sum(cpu_seconds(pid) for pid in pids) - cpu
        rss = [round(memory_mib(pid), 1) for pid in pids]
        time.sleep(1.0)  # the audit backend writes an event once the response is complete
        requests = self.audit.operator_requests(offset)
        total = sum(requests.values())
        self.results.update(
            idle_seconds=round(elapsed, 1),
            # Per replica: the largest shard's (one replica, without sharding); all of them in rss_mib_by_shard.
            rss_mib=max(rss), rss_peak_mib=max(round(memory_mib(pid, "VmHWM"), 1) for pid in pids),
            rss_mib_by_shard=rss, rss_mib_total=round(sum(rss), 1),
            cpu_percent=round(100 * cpu_used / elapsed, 2),
            idle_requests=total,
            idle_requests_per_policy_per_min=round(per_policy_per_minute(total, len(self.names), elapsed), 4),
            idle_requests_by_kind={kind: round(per_policy_per_minute(count, len(self.names), elapsed), 4)
                                   for kind, count in requests.most_common()})
        self.say(f"  RSS {self.results['rss_mib']} MiB (peak {self.results['rss_peak_mib']}), "
                 f"CPU {self.results['cpu_percent']} %, {total} requests = "
                 f"{self.results['idle_requests_per_policy_per_min']} per policy per minute")

    def triggers(self) -> None:
        from tests.integration.test_black_hole import _trigger_to_job

        count = min(self.args.triggers, len(self.names))
        if count < self.args.triggers:
            self.say(f"  only {count} policies: {count} triggers, not {self.args.triggers}")
        self.say(f"triggering {count} policies one after another")
        samples = []
        for name in self.names[:count]:
            samples.append(_trigger_to_job(self.scenario, name))
            time.sleep(self.args.trigger_gap)
        self.results.update(
            triggers=count, trigger_to_job_samples_s=[round(s, 3) for s in samples],
            trigger_to_job_p50_s=round(percentile(samples, 50), 3),
            trigger_to_job_p99_s=round(percentile(samples, 99), 3),
            trigger_to_job_max_s=round(max(samples), 3))
        self.say(f"  trigger to Job: p50 {self.results['trigger_to_job_p50_s']} s, "
                 f"p99 {self.results['trigger_to_job_p99_s']} s, max {self.results['trigger_to_job_max_s']} s")

    def restart(self) -> None:
        from retrain_contract.api import names

        self.say("restart: SIGKILL the operator, remove every policy's status, start a new operator")
        self.local.stop_operator(kill=True)
        self.stop_shards()
        for name in self.names:
            self.local.custom.patch_namespaced_custom_object_status(
                names.GROUP, names.VERSION, self.scenario.namespace, names.PLURAL, name,
                {"status": None})  # a merge patch: null removes it
        left = sum(1 for status in self.statuses().values() if status)
        assert left == 0, f"{left} policies still have a status after the reset"
        offset = self.audit.offset()
        started = time.monotonic()
        self.local.start_operator()
        self.start_shards()
        self.results["restart_all_status_s"] = round(self.wait_all_status(started, "restart"), 2)
        restart = self.audit.operator_requests(offset)
        self.results["restart_requests_by_kind"] = dict(restart.most_common())
        self.results["restart_rss_mib"] = max(round(memory_mib(pid), 1) for pid in self.pids())
        self.say(f"  every policy has a status {self.results['restart_all_status_s']:.1f} s after the restart")

    def run(self) -> dict[str, Any]:
        self.results.update(policies=len(self.names), shards=self.args.shards, command=" ".join(sys.argv),
                            machine=machine(), max_requeue_s=MAX_REQUEUE)
        self.start()
        self.create()
        self.idle()
        self.triggers()
        self.restart()
        self.results["load_after"] = os.getloadavg()
        return self.results


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "kernel": platform.release(), "load_before": os.getloadavg(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}


def report(results: dict[str, Any]) -> str:
    shards = results.get("shards") or 1
    replicas = f"{shards} shards (one operator process each)" if shards > 1 else "one operator replica"
    lines = [f"{results.get('policies')} policies, {replicas} "
             f"(load before {results.get('machine', {}).get('load_before')})", ""]
    plain = ["create_s", "startup_all_status_s", "rss_mib", "rss_peak_mib", "rss_mib_by_shard", "rss_mib_total",
             "cpu_percent", "idle_seconds",
             "idle_requests_per_policy_per_min", "trigger_to_job_p50_s", "trigger_to_job_p99_s",
             "trigger_to_job_max_s", "restart_all_status_s", "restart_rss_mib"]
    lines += [f"  {key:36} {results[key]}" for key in plain if key in results]
    lines += ["", f"  {'target':36} {'measured':>10} {'target':>8} {'ratio':>8}"]
    lines += [f"  {m:36} {v:>10} {t:>8} {r:>8}" for m, v, t, r in ratio_table(results)]
    if results.get("idle_requests_by_kind"):
        lines += ["", "  idle requests per policy per minute, by kind:"]
        lines += [f"    {value:8.4f}  {kind}" for kind, value in results["idle_requests_by_kind"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policies", type=int, required=True)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--triggers", type=int, default=50)
    parser.add_argument("--trigger-gap", type=float, default=0.5, help="seconds between two triggers")
    parser.add_argument("--idle-seconds", type=float, default=MAX_REQUEUE,
                        help="the idle window (default: one requeue period)")
    parser.add_argument("--settle-seconds", type=float, default=None,
                        help="wait after the last status before the idle window (default: half of it, so the "
                             "first wave of periodic reconciles falls in its middle, not on its edge)")
    parser.add_argument("--status-timeout", type=float, default=1800.0)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the workdir (logs, the audit log)")
    parser.add_argument("--baseline", default=None, metavar="REF",
                        help="first measure the operator of this git commit the same way, and report both")
    parser.add_argument("--shards", type=int, default=1,
                        help="run N operator processes, --shard-index 0..N-1 --shard-count N (docs/scale.md#sharding); "
                             "rss_mib is then the largest shard's, cpu_percent their sum")
    args = parser.parse_args(argv)
    if args.shards < 1 or (args.shards > 1 and args.baseline):
        parser.error("--shards must be at least 1, and cannot be combined with --baseline (no shards there)")

    sys.path.insert(0, str(ROOT))  # the tests' helpers (tests.integration), as the tests use them
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="scale-bench-"))

    def terminated(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminated)
    worktree = workdir / "baseline-source"
    results: dict[str, Any] = {}
    runs: list[tuple[str, Bench]] = []
    try:
        if args.baseline:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(worktree), args.baseline],
                           check=True, capture_output=True)
            runs.append(("baseline", Bench(args, workdir / "baseline", source=worktree)))
        runs.append(("current", Bench(args, workdir / "current" if args.baseline else workdir)))
        for label, bench in runs:
            try:
                if args.baseline:
                    bench.say(f"== {label}: {args.baseline if bench.source else 'this checkout'} ==")
                bench.run()
            finally:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut the clean-up short
                bench.stop()
                signal.signal(signal.SIGTERM, terminated)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        finished = {label: bench.results for label, bench in runs if bench.results}
        results = dict(finished.get("current") or {})
        if "baseline" in finished:
            results["baseline"] = {**finished["baseline"], "ref": args.baseline}
            results["vs_baseline"] = versus(results, finished["baseline"])
        if results and args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
        if args.baseline:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)],
                           capture_output=True)
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    if "baseline" in results:
        print("baseline (" + str(args.baseline) + "):")
        print(report(results["baseline"]))
        print("\ncurrent:")
    print(report(results))
    if "vs_baseline" in results:
        print(f"\n  {'metric':36} {'baseline':>10} {'current':>10} {'current/baseline':>17}")
        for metric, ratio in results["vs_baseline"].items():
            print(f"  {metric:36} {results['baseline'][metric]:>10} {results[metric]:>10} "
                  f"{'-' if ratio is None else f'{ratio:.3f}x':>17}")
    if args.json:
        print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

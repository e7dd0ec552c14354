"""Section 3 of the STM benchmark: fan-out of session events over WebSocket, each server
configuration side by side in one run.

Configurations: subscription results executed for each subscriber
(SHARED_SUBSCRIPTION_EXECUTION=false, what the service did before) or shared by subscribers of
the same operation (the default), on one uvicorn worker or two (`--workers 2`, one Redis). Every
configuration is its own server process, all up at once with their subscribers connected, and
the measurements alternate between them, so drift on a shared machine touches all alike.

3a: one write at a time to 1,000 subscribers of one session; delivery latency and the server
CPU one event costs. 3b: 200 subscribers and writes due at a steady rate (open loop) for
SUSTAIN_S seconds: does lag grow, and how many events a second does one worker deliver?
"""

from __future__ import annotations

import asyncio
import math
import signal
import subprocess
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from bench.driver import CpuMeter
from bench.fanout import FanoutBench, FanoutRound, SustainedRun
from bench.processes import HOST, BenchServer
from bench.stats import Target, fmt, percentile, table

SUBSCRIBERS = 1000
ROUNDS = 5
SUSTAINED_SUBSCRIBERS = 200
SUSTAIN_S = 10.0
RATES = (4.0, 8.0, 16.0, 32.0)
T = TypeVar("T")


@dataclass(frozen=True)
class Config:
    """One way to run the server (`code`: another checkout's, see --baseline)."""

    shared: bool
    workers: int
    code: Path | None = None

    @property
    def label(self) -> str:
        how = "shared execution" if self.shared else "executed per subscriber"
        if self.code is not None:
            how = f"baseline {self.code.name}"
        return f"{how}, {self.workers} worker{'s' if self.workers > 1 else ''}"

    @property
    def env(self) -> dict[str, str]:
        return {"SHARED_SUBSCRIPTION_EXECUTION": "true" if self.shared else "false"}


PER_SUBSCRIBER_1 = Config(shared=False, workers=1)
SHARED_1 = Config(shared=True, workers=1)
PER_SUBSCRIBER_2 = Config(shared=False, workers=2)
SHARED_2 = Config(shared=True, workers=2)


@dataclass
class _Subject:
    """A configuration's server and the subscribers connected to it."""

    config: Config
    server: BenchServer
    bench: FanoutBench | None = None
    meter: CpuMeter | None = None
    # with the server's CPU (s) and this process's
    rounds: list[tuple[FanoutRound, float, float]] = field(default_factory=list)
    runs: list[tuple[SustainedRun, float, float]] = field(default_factory=list)
    spread: list[int] = field(default_factory=list)  # subscribers per worker
    rss_mb: float = math.nan

    async def measured(self, work: Awaitable[T]) -> tuple[T, float, float]:
        """The result of awaiting work, and the CPU (s) it took the server and this process."""
        assert self.meter is not None
        own_before, before, _ = self.meter.sample()
        result = await work
        own_after, after, _ = self.meter.sample()
        assert before is not None
        assert after is not None
        return result, after - before, own_after - own_before


class FanoutSections:
    """Runs 3a and 3b; their targets go to the summary, RSS lines to section 4."""

    def __init__(
        self,
        redis_url: str,
        run: str,
        *,
        ws: str | None = None,
        baseline: Path | None = None,
        profile: Path | None = None,
    ) -> None:
        self.redis_url = redis_url
        self.run = run
        self.ws = ws
        # Another checkout (e.g. `git archive <rev> | tar -x -C DIR`) run as one more
        # configuration, for before/after figures from one run.
        self.baseline = Config(shared=False, workers=1, code=baseline) if baseline else None
        self.profile = profile  # where py-spy's flame graphs of 3a's one-worker servers go
        self.targets: list[Target] = []
        self.rss: list[tuple[str, float]] = []

    def _server(self, config: Config) -> BenchServer:
        server = BenchServer(
            self.redis_url, workers=config.workers, env=config.env, ws=self.ws, code=config.code
        )
        server.start()
        return server

    def _profiled(self, subjects: Sequence[_Subject]) -> list[subprocess.Popen[bytes]]:
        """py-spy recording each one-worker server (idle time is left out of its samples)."""
        if self.profile is None:
            return []
        self.profile.mkdir(parents=True, exist_ok=True)
        spies = []
        for subject in subjects:
            if subject.config.workers == 1:
                name = subject.config.label.replace(", ", "-").replace(" ", "-")
                command = [
                    "py-spy", "record", "--pid", str(subject.server.pid), "--nonblocking",
                    "--rate", "200", "--output", str(self.profile / f"{name}.svg"),
                ]  # fmt: skip
                spies.append(
                    subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                )
        return spies

    @staticmethod
    def _stop_profiling(spies: Sequence[subprocess.Popen[bytes]]) -> None:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            spy.wait(timeout=60)

    async def _connect(self, subjects: Sequence[_Subject], subscribers: int, name: str) -> None:
        for index, subject in enumerate(subjects):
            sid = f"bench-{self.run}-{name}-{index}"  # its own session: no other's events
            subject.bench = FanoutBench(HOST, subject.server.port, sid, subscribers)
            took = await subject.bench.start()
            subject.meter = CpuMeter(subject.server.worker_pids())
            if subject.config.workers > 1:
                subject.spread = subject.server.connections_per_worker()
            spread = (
                f" (per worker: {' / '.join(map(str, subject.spread))})" if subject.spread else ""
            )
            print(f"  {subject.config.label}: {subscribers:,} live in {took:.1f} s{spread}")

    @staticmethod
    async def _disconnect(subjects: Sequence[_Subject]) -> None:
        for subject in subjects:
            if subject.bench is not None:
                await subject.bench.close()
                subject.bench = None

    async def one_event(self) -> None:
        """3a: 1,000 subscribers, one write at a time, every configuration in turn."""
        print(
            f"== 3a. Fan-out: one write to {SUBSCRIBERS:,} graphql-transport-ws subscribers of "
            f"one session; {ROUNDS} writes per configuration, alternating"
        )
        configs = [PER_SUBSCRIBER_1, SHARED_1, PER_SUBSCRIBER_2, SHARED_2]
        if self.baseline is not None:
            configs.insert(0, self.baseline)
        subjects = [_Subject(config, self._server(config)) for config in configs]
        try:
            await self._connect(subjects, SUBSCRIBERS, "fan")
            for subject in subjects:
                if subject.config.workers == 1:
                    subject.rss_mb = subject.server.rss_mb()
            spies = self._profiled(subjects)
            for index in range(ROUNDS):
                for subject in subjects:
                    assert subject.bench is not None
                    await asyncio.sleep(0.3)
                    subject.rounds.append(await subject.measured(subject.bench.measure(index)))
            self._stop_profiling(spies)
            await self._disconnect(subjects)
            await asyncio.sleep(1.0)
            shared = next(s for s in subjects if s.config == SHARED_1)
            self.rss += [
                (f"{SUBSCRIBERS:,} subscribers ({c.config.label})", c.rss_mb)
                for c in subjects
                if c.config.workers == 1
            ]
            self.rss.append((f"after they left ({shared.config.label})", shared.server.rss_mb()))
        finally:
            await self._disconnect(subjects)
            for subject in subjects:
                subject.server.stop()
        self._report_one_event(subjects)

    def _report_one_event(self, subjects: Sequence[_Subject]) -> None:
        rows = []
        worst: dict[Config, float] = {}
        cpu: dict[Config, float] = {}
        complete: dict[Config, bool] = {}
        for subject in subjects:
            rounds = [r for r, _, _ in subject.rounds]
            pooled = [x * 1000 for r in rounds for x in r.latencies_s]
            worst[subject.config] = max(
                (percentile(r.latencies_s, 99) * 1000 for r in rounds), default=math.nan
            )
            # The issue's own measure: from the write's acknowledgement (its HTTP answer), which
            # the fan-out itself delays on one worker; frames sent before it count as 0.
            after_ack = max(
                (
                    percentile([max(0.0, x - r.write_s) for x in r.latencies_s], 99) * 1000
                    for r in rounds
                ),
                default=math.nan,
            )
            cpu[subject.config] = percentile([c * 1000 for _, c, _ in subject.rounds], 50)
            client = percentile([c * 1000 for _, _, c in subject.rounds], 50)
            complete[subject.config] = all(len(r.latencies_s) == r.subscribers for r in rounds)
            received = sum(len(r.latencies_s) for r in rounds)
            expected = sum(r.subscribers for r in rounds)
            rows.append(
                [
                    subject.config.label,
                    f"{received:,}/{expected:,}",
                    fmt(percentile(pooled, 50)),
                    fmt(percentile(pooled, 99)),
                    fmt(worst[subject.config]),
                    fmt(after_ack),
                    fmt(max(pooled, default=math.nan)),
                    fmt(percentile([r.write_s * 1000 for r in rounds], 50)),
                    fmt(cpu[subject.config], 0),
                    fmt(cpu[subject.config] * 1000 / SUBSCRIBERS, 0),
                    fmt(client, 0),
                    "yes" if all(r.distinct_frames == 1 for r in rounds) else "NO",
                ]
            )
        headers = [
            "configuration",
            "received",
            "p50 ms",
            "p99 ms",
            "worst round p99",
            "from ack p99",
            "max ms",
            "write ms",
            "server CPU ms/event",
            "us/subscriber",
            "client CPU ms",
            "same bytes",
        ]
        print(table(headers, rows))
        print(
            "  latency = from just before the HTTP write to the frame's arrival in this process"
            " (read in the\n  event loop's data callback); write ms = the write's own answer "
            "(p50); from ack p99 = worst round's p99 counted from the\n  write's answer; "
            "server CPU = all workers, median of the rounds, the write included; "
            "client CPU = this process's (reading 1,000 frames);\n  same bytes = every "
            "subscriber got an identical frame"
        )
        for workers in (1, 2):
            before = Config(shared=False, workers=workers)
            after = Config(shared=True, workers=workers)
            print(
                f"  shared / per subscriber, {workers} worker(s): worst-round p99 "
                f"{worst[after] / worst[before]:.2f}x, server CPU per event "
                f"{cpu[after] / cpu[before]:.2f}x"
            )
        if self.baseline is not None:
            print(
                f"  shared / {self.baseline.label}: worst-round p99 "
                f"{worst[SHARED_1] / worst[self.baseline]:.2f}x, server CPU per event "
                f"{cpu[SHARED_1] / cpu[self.baseline]:.2f}x"
            )
        if self.profile is not None:
            print(f"  py-spy flame graphs of the one-worker servers: {self.profile}/")
        print()
        for config in (SHARED_1, SHARED_2):
            self.targets.append(
                Target(
                    f"fan-out p99 < 100 ms, {SUBSCRIBERS:,} subscribers, {config.label} "
                    f"(worst of {ROUNDS})",
                    f"{worst[config]:.1f} ms",
                    complete[config] and worst[config] < 100,
                )
            )

    async def sustained(self) -> None:
        """3b: 200 subscribers, writes due at a steady rate; rates and configurations alternate."""
        print(
            f"== 3b. Sustained fan-out: {SUSTAINED_SUBSCRIBERS} subscribers of one session, one "
            f"worker, a write due every 1/rate s for {SUSTAIN_S:g} s (open loop)"
        )
        configs = [PER_SUBSCRIBER_1, SHARED_1]
        if self.baseline is not None:
            configs.insert(0, self.baseline)
        subjects = [_Subject(config, self._server(config)) for config in configs]
        try:
            await self._connect(subjects, SUSTAINED_SUBSCRIBERS, "rate")
            for rate in RATES:
                for subject in subjects:
                    assert subject.bench is not None
                    await asyncio.sleep(1.0)
                    subject.runs.append(
                        await subject.measured(subject.bench.sustain(rate, SUSTAIN_S))
                    )
        finally:
            await self._disconnect(subjects)
            for subject in subjects:
                subject.server.stop()
        self._report_sustained(subjects)

    def _report_sustained(self, subjects: Sequence[_Subject]) -> None:
        rows = []
        for rate_index, rate in enumerate(RATES):
            for subject in subjects:
                run, cpu_s, _ = subject.runs[rate_index]
                first, last = run.window(True), run.window(False)
                lags = run.lags_ms(0.0, math.inf)
                rows.append(
                    [
                        f"{rate:g}/s, {subject.config.label}",
                        f"{run.complete}/{len(run.events)}",
                        f"{fmt(first[0])} / {fmt(first[1])}",
                        f"{fmt(last[0])} / {fmt(last[1])}",
                        fmt(max(lags, default=math.nan)),
                        fmt(run.delivered_per_s),
                        fmt(cpu_s * 1000 / max(1, len(run.events))),
                        ("yes" if run.keeps_up else "NO")
                        + (f" ({run.write_errors} write errors)" if run.write_errors else ""),
                    ]
                )
        headers = [
            "rate, configuration",
            "complete",
            "lag p50/p99 first 2 s",
            "lag p50/p99 last 2 s",
            "max lag",
            "delivered/s",
            "server CPU ms/event",
            "keeps up",
        ]
        print(table(headers, rows))
        print(
            "  lag (ms) = from when a write was due to its arrival at a subscriber; complete = "
            "events every\n  subscriber got (within 10 s of the last write); delivered/s = "
            "complete events per second of wall time;\n  keeps up = all complete and lag p50 at "
            "the end <= 1.5x its start + 50 ms"
        )
        for subject in subjects:
            kept = [run.rate for run, _, _ in subject.runs if run.keeps_up]
            cpu_ms = percentile([cpu * 1000 / len(run.events) for run, cpu, _ in subject.runs], 50)
            best = max((run.delivered_per_s for run, _, _ in subject.runs), default=math.nan)
            print(
                f"  {subject.config.label}: keeps up to {max(kept, default=0):g} writes/s of those "
                f"tried; at most {best:.1f} events/s delivered; ~{cpu_ms:.1f} ms server CPU per "
                f"event -> ~{1000 / cpu_ms:.0f} events/s if one core were all its own"
            )
        print()
        shared = next(s for s in subjects if s.config == SHARED_1)
        every_250ms = next(run for run, _, _ in shared.runs if run.rate == 4.0)
        first_p50, first_p99 = every_250ms.window(True)
        last_p50, last_p99 = every_250ms.window(False)
        kept = [run.rate for run, _, _ in shared.runs if run.keeps_up]
        self.targets += [
            Target(
                f"{SUSTAINED_SUBSCRIBERS} subscribers, a write every 250 ms: lag does not grow "
                "(1 worker)",
                f"p50 {first_p50:.0f} -> {last_p50:.0f}, p99 {first_p99:.0f} -> {last_p99:.0f} ms",
                every_250ms.keeps_up,
            ),
            Target(
                f"writes/s one worker keeps up with, {SUSTAINED_SUBSCRIBERS} subscribers "
                f"(tried {', '.join(f'{r:g}' for r in RATES)})",
                f"{max(kept, default=0):g}/s",
                4.0 in kept,
            ),
        ]

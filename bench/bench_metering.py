"""Metering: requests per poll, values/s into the outbox, CPU and RSS at a 5 s poll, RTU line time,
and the RSS of a whole `anju edge run` process with 200 meters and its uplink.

Every figure is set against a baseline from the same run: the one-request-per-point plan that other
gateways use (the ThingsBoard IoT Gateway sends one request per configured point), the
theoretical line time for RTU, or a bare interpreter beside the gateway process. The gateway side
(pollers, pymodbus client, the SQLite outbox) runs in a fresh process of its own, so its RSS is
not that of benchmarks run before it, pinned to one core; the simulated meters run in one
`anju sim meters` process (several TCP hosts) pinned to the other core, and its CPU is reported
so a simulator bottleneck would show.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from subprocess import PIPE

import aiomqtt
import psutil
import yaml

from anju.sim.meters import make_meters, serial_server
from anju.sim.serial import VirtualSerialLine
from edge.config import ModbusBus
from edge.meters.poller import BusPoller, Plan
from edge.meters.profiles import known_profiles, load_profile
from edge.meters.sink import OutboxSink
from edge.store.outbox import Outbox
from protocols.modbus.plan import one_per_point, plan_profile
from protocols.modbus.rtu import read_line_time_s
from protocols.mqtt.topics import Kind, topic
from runtime.clock import utc_now

METERS = 200
# 8 TCP hosts (RS-485-to-TCP converters in the field) of 25 meters each, all served by one
# simulator process: the gateway polls up to 8 hosts at once. One process for all hosts, since
# four one-host processes sharing the simulator core answered at less than half the rate
# (15,400 vs 36,500 values/s in a trial: a context switch per request instead of one loop).
HOSTS = 8
GATEWAY_CORE, SIM_CORE = 0, 1
THROUGHPUT_S = 8.0
IDLE_POLL_S = 5.0
IDLE_CYCLES = 6
RTU_METERS = 10
RTU_BAUD = 9600


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pin(pid: int, core: int) -> bool:
    """Keep a process on one core (when the machine has it): the goals are per core."""
    if (os.cpu_count() or 1) <= core or not hasattr(os, "sched_setaffinity"):
        return False
    os.sched_setaffinity(pid, {core})
    return True


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class SimCpu:
    """CPU seconds the simulator process used, to show whether it was the bottleneck."""

    def __init__(self, pid: int) -> None:
        self._proc = psutil.Process(pid)

    def __call__(self) -> float:
        return sum(self._proc.cpu_times()[:2])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def simulator(profile: str, count: int, hosts: int) -> Iterator[tuple[list[int], int]]:
    """One `anju sim meters` process serving `hosts` TCP ports with `count` meters each,
    pinned to SIM_CORE; yields the ports and its pid."""
    ports = [free_port() for _ in range(hosts)]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "anju",
            "sim",
            "meters",
            "--profile",
            profile,
            "--count",
            str(count),
            *(arg for port in ports for arg in ("--port", str(port))),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        pin(proc.pid, SIM_CORE)
        assert proc.stdout is not None
        proc.stdout.readline()  # the banner: serving
        yield ports, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stdout is not None:
            proc.stdout.close()


def tcp_bus(ports: list[int], per_host: int, profile: str, interval_s: float) -> ModbusBus:
    devices = [
        {"id": f"h{h}-u{u}", "unit_id": u, "profile": profile, "tcp": f"127.0.0.1:{port}"}
        for h, port in enumerate(ports)
        for u in range(1, per_host + 1)
    ]
    return ModbusBus.model_validate(
        {
            "name": "bench",
            "tcp": f"127.0.0.1:{ports[0]}",
            "poll_interval_s": interval_s,
            "timeout_s": 2.0,
            "devices": devices,
        }
    )


def requests_per_poll() -> None:
    print("requests per poll (merged plan vs one request per point):")
    for name in known_profiles():
        profile = load_profile(name)
        merged = len(plan_profile(1, profile))
        naive = len(one_per_point(1, profile.points))
        print(
            f"  {name:16s} {len(profile.points):3d} points: {merged} vs {naive}"
            f"  ({naive / merged:.1f}x fewer)"
        )


async def throughput(
    bus: ModbusBus, outbox: Outbox, plan: Plan, seconds: float, sim_cpu: SimCpu
) -> dict[str, float]:
    poller = BusPoller(bus, OutboxSink(outbox), now=utc_now, plan=plan)
    values = polls = 0
    try:
        await poller.poll_once()  # connect and warm up
        cpu0, sim0, t0 = cpu_s(), sim_cpu(), time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            values += await poller.poll_once(deadline_s=60)
            polls += 1
        wall, cpu, sim = time.perf_counter() - t0, cpu_s() - cpu0, sim_cpu() - sim0
    finally:
        poller.close()
    return {
        "values_s": values / wall,
        "values_cpu_s": values / cpu,
        "cpu_pct": 100 * cpu / wall,
        "sim_pct": 100 * sim / wall,
        "requests_poll": poller.requests / (polls + 1),
        "polls": polls,
    }


async def idle_profile(bus: ModbusBus, outbox: Outbox) -> dict[str, float]:
    """Run the real loop at a 5 s poll; CPU overall, CPU between polls, and RSS."""
    poller = BusPoller(bus, OutboxSink(outbox), now=utc_now)
    marks: list[tuple[str, float, float]] = []
    original = poller.poll_once

    async def poll_marked(*, deadline_s: float | None = None) -> int:
        marks.append(("start", time.perf_counter(), cpu_s()))
        n = await original(deadline_s=deadline_s)
        marks.append(("end", time.perf_counter(), cpu_s()))
        return n

    poller.poll_once = poll_marked  # type: ignore[method-assign]
    task = asyncio.create_task(poller.run(), name="bench-poller")
    await asyncio.sleep(IDLE_POLL_S * IDLE_CYCLES + 0.5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    first, last = marks[0], [m for m in marks if m[0] == "start"][-1]
    busy = idle_wall = idle_cpu = 0.0
    for (k1, t1, c1), (k2, t2, c2) in itertools.pairwise(marks):
        if k1 == "end" and k2 == "start":
            idle_wall += t2 - t1
            idle_cpu += c2 - c1
        elif k1 == "start":
            busy += t2 - t1
    return {
        "cpu_pct": 100 * (last[2] - first[2]) / (last[1] - first[1]),
        "idle_cpu_pct": 100 * idle_cpu / idle_wall,
        "poll_s": busy / max(1, len(marks) // 2),
        "rss_mb": psutil.Process().memory_info().rss / 2**20,
    }


async def rtu_line_time() -> dict[str, float]:
    profile = load_profile("eastron-sdm120")
    meters = make_meters(profile, RTU_METERS, time.time)
    async with VirtualSerialLine(baud=RTU_BAUD) as line:
        server = serial_server(meters, line.server_port, baud=RTU_BAUD)
        await server.serve_forever(background=True)
        bus = ModbusBus.model_validate(
            {
                "name": "rs485",
                "serial": line.client_port,
                "baud": RTU_BAUD,
                "timeout_s": 1.0,
                "devices": [
                    {"id": f"m{m.unit_id}", "unit_id": m.unit_id, "profile": "eastron-sdm120"}
                    for m in meters
                ],
            }
        )
        with tempfile.TemporaryDirectory() as tmp:
            outbox = Outbox(Path(tmp) / "rtu.db")
            poller = BusPoller(bus, OutboxSink(outbox), now=utc_now)
            reads = [r for meter in poller.meters for r in meter.reads]
            try:
                await poller.poll_once(deadline_s=30)  # open the port
                times = []
                for _ in range(3):
                    t0 = time.perf_counter()
                    await poller.poll_once(deadline_s=30)
                    times.append(time.perf_counter() - t0)
            finally:
                poller.close()
                outbox.close()
        await server.shutdown()  # type: ignore[no-untyped-call]
    naive = [r for m in meters for r in one_per_point(m.unit_id, profile.points)]
    return {
        "poll_s": min(times),
        "bound_s": sum(read_line_time_s(r.count, RTU_BAUD) for r in reads),
        "naive_bound_s": sum(read_line_time_s(r.count, RTU_BAUD) for r in naive),
        "reads": len(reads),
        "naive_reads": len(naive),
    }


async def run() -> None:
    print(f"load average at start: {load()}")
    pinned = pin(0, GATEWAY_CORE)
    requests_per_poll()
    per_host = METERS // HOSTS
    with (
        simulator("eastron-sdm630", per_host, HOSTS) as (ports, pid),
        tempfile.TemporaryDirectory() as tmp,
    ):
        outbox = Outbox(Path(tmp) / "bench.db")
        sim_cpu = SimCpu(pid)
        try:
            bus = tcp_bus(ports, per_host, "eastron-sdm630", interval_s=IDLE_POLL_S)
            where = (
                f"gateway pinned to core {GATEWAY_CORE}, simulator to core {SIM_CORE}"
                if pinned
                else "not pinned (one core only)"
            )
            print(
                f"\n{METERS} x SDM630 (18 points, FC04) behind {HOSTS} TCP hosts ({per_host} each,"
                f" one simulator process), {where}, polled back to back for {THROUGHPUT_S:.0f} s:"
            )
            merged = await throughput(bus, outbox, Plan.MERGED, THROUGHPUT_S, sim_cpu)
            naive = await throughput(bus, outbox, Plan.PER_POINT, THROUGHPUT_S, sim_cpu)
            for label, r in (("merged", merged), ("one request per point", naive)):
                print(
                    f"  {label:22s} {r['values_s']:8.0f} values/s committed, "
                    f"{r['requests_poll']:5.0f} requests/poll, gateway CPU {r['cpu_pct']:3.0f}%, "
                    f"{r['values_cpu_s']:8.0f} values per CPU-second;"
                    f" simulator {r['sim_pct']:3.0f}% of its core"
                )
            speed = merged["values_s"] / naive["values_s"]
            work = merged["values_cpu_s"] / naive["values_cpu_s"]
            print(f"  merged / one-per-point: {speed:.1f}x values/s, {work:.1f}x per CPU-second")
            print(f"\n{METERS} meters at a {IDLE_POLL_S:.0f} s poll for {IDLE_CYCLES} cycles:")
            idle = await idle_profile(bus, outbox)
            print(
                f"  gateway CPU {idle['cpu_pct']:.2f}% of one core on average,"
                f" {idle['idle_cpu_pct']:.2f}% between polls; a poll takes {idle['poll_s']:.2f} s;"
                f" RSS {idle['rss_mb']:.0f} MB"
            )
        finally:
            outbox.close()
    print(f"\nRTU: {RTU_METERS} x SDM120 on one paced {RTU_BAUD}-baud line (pty pair):")
    rtu = await rtu_line_time()
    poll_ms, bound_ms = rtu["poll_s"] * 1000, rtu["bound_s"] * 1000
    print(
        f"  full poll {poll_ms:.0f} ms for {rtu['reads']:.0f} reads; theoretical line time of"
        f" those reads {bound_ms:.0f} ms -> {poll_ms / bound_ms:.2f}x the bound"
    )
    naive_ms = rtu["naive_bound_s"] * 1000
    print(
        f"  one request per point: {rtu['naive_reads']:.0f} reads, at least {naive_ms:.0f} ms"
        f" on the wire ({naive_ms / poll_ms:.1f}x our measured poll)"
    )
    print(f"\nload average at end: {load()}")


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def bare_python_rss() -> float:
    """The baseline: an interpreter that has imported nothing of ours."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=PIPE)
    try:
        time.sleep(1.0)
        return rss_mb(proc.pid)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)


def start_gateway(config: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "anju", "edge", "run", "--config", str(config)])
    pin(proc.pid, GATEWAY_CORE)
    return proc


async def gateway_process_rss() -> dict[str, float]:
    """`anju edge run` with the 200 meters and its uplink to a broker, as installed: RSS after
    IDLE_CYCLES polls at IDLE_POLL_S, beside a bare interpreter's."""
    from bench.bench_link import broker  # noqa: PLC0415 - the broker stack stays out of run()

    per_host = METERS // HOSTS
    with (
        simulator("eastron-sdm630", per_host, HOSTS) as (ports, _),
        tempfile.TemporaryDirectory() as name,
    ):
        tmp = Path(name)
        bus = tcp_bus(ports, per_host, "eastron-sdm630", interval_s=IDLE_POLL_S)
        async with broker() as (url, protocol):
            config = {
                "gateway_id": "bench-rss",
                "mqtt": {"url": url, "protocol": protocol},
                "store": {"path": str(tmp / "gateway.db")},
                "buses": [bus.model_dump(mode="json")],
            }
            path = tmp / "gateway.yaml"
            path.write_text(yaml.safe_dump(config))
            telemetry = 0
            async with aiomqtt.Client("127.0.0.1", int(url.rsplit(":", 1)[1])) as client:
                await client.subscribe(topic("bench-rss", Kind.TELEMETRY))
                proc = start_gateway(path)
                samples: list[float] = []
                try:
                    async with asyncio.timeout(IDLE_POLL_S * IDLE_CYCLES):
                        async for _ in client.messages:
                            telemetry += 1
                            samples.append(rss_mb(proc.pid))
                except TimeoutError:
                    pass
                finally:
                    samples.append(rss_mb(proc.pid))
                    proc.terminate()
                    proc.wait(20)
    if not telemetry:
        raise RuntimeError("the gateway sent no telemetry: the uplink never came up")
    return {"rss_mb": samples[-1], "rss_max_mb": max(samples), "telemetry": telemetry}


def main() -> None:
    """Run the gateway side in a fresh interpreter: RSS and CPU are then the gateway's alone."""
    sys.stdout.flush()
    subprocess.run([sys.executable, "-m", "bench.bench_metering", "--gateway"], check=True)
    print(f"\n`anju edge run`, {METERS} SDM630s at a {IDLE_POLL_S:.0f} s poll, uplink to a broker:")
    bare = bare_python_rss()
    gateway = asyncio.run(gateway_process_rss())
    print(
        f"  RSS {gateway['rss_mb']:.1f} MB after {IDLE_CYCLES} polls"
        f" (peak {gateway['rss_max_mb']:.1f} MB, {gateway['telemetry']:.0f} telemetry messages);"
        f" a bare Python beside it: {bare:.1f} MB"
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--gateway"]:
        asyncio.run(run())
    else:
        main()

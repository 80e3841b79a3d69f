"""Mixed load: what a contractor's office sees while its customers write, through the real
server (deploy/web.sh, production's logging) on PostgreSQL and Redis.

    SECRET_KEY=x .venv/bin/python -m bench.mixed [--seconds 60] [--projects 10000] [--idle 1000]
    SECRET_KEY=x .venv/bin/python -m bench.mixed --web 2      # 2 web processes behind Caddy

At once, for --seconds:
- --idle customer tabs open (/ws/thread/), each a different customer, doing nothing;
- --staff staff members, each with the project list's socket open (/ws/staff/inbox/) and
  reloading the list (GET /staff/projects/, --projects projects) once a second;
- --senders customers, each with one other tab of their own open, sending back to back
  (POST /messages/send/ as htmx does, the next as soon as the last is answered).

Figures: POST → the sender's other tab, POST → each staff list socket (a row may be superseded
by a newer one of the same thread before it arrives; that is fine if the newest arrives, and
a row whose thread's newest state never reached a socket is counted as lost), the list's GET,
the memory per idle socket, the server's CPU over the window, and the bare view's CPU in the
same run. With --web N, N deploy/web.sh processes run behind Caddy (deploy/Caddyfile, round
robin, WebSockets upgraded through it), every client talks to Caddy, live frames between the
processes go through the Redis channel layer, and CPU and memory are summed over the web
processes (Caddy's CPU printed apart). Goal (issue 24): customer tab p99 ≤ 250 ms, staff
socket p99 ≤ 500 ms, none lost, list GET p99 ≤ 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp

from bench import harness
from bench.live import Tabs, _cookie_header

ROW = re.compile(r'id="project-(\d+)"[^>]*>.*?LB(\d+)E', re.S)


class ListSocket:
    """One staff list socket: when each message's row arrived, and the newest row per project."""

    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}
        self.newest: dict[int, int] = {}

    async def read(self, ws) -> None:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            now = time.perf_counter()
            for project, mark in ROW.findall(message.data):
                mark = int(mark)
                self.arrived.setdefault(mark, now)
                self.newest[int(project)] = max(self.newest.get(int(project), 0), mark)


def _headers(session, base_url: str) -> dict:
    return {
        "Cookie": _cookie_header(session),
        "X-CSRFToken": session.cookies["csrftoken"],
        "HX-Request": "true",
        "Referer": base_url + "/",
    }


async def run(args, server, world, staff_users, project_of) -> list[list[str]]:
    p = harness.percentile
    with ThreadPoolExecutor(8) as pool:
        sign_in = lambda user: harness.signed_in_session(server.url, user)  # noqa: E731
        idle_sessions = list(pool.map(sign_in, [c.user for c in world.customers[: args.idle]]))
        senders = world.customers[args.idle : args.idle + args.senders]
        sender_sessions = list(pool.map(sign_in, [c.user for c in senders]))
        staff_sessions = list(pool.map(sign_in, staff_users))
    floor = harness.bare_cost(server, staff_sessions[0])
    rows = [
        ["measure", "figure"],
        ["bare Django view, server CPU/request", f"{floor.cpu_ms:.2f} ms"],
    ]

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        rss_before = server.rss_kb()
        idle = []
        for session in idle_sessions:
            tabs = Tabs(http, server, _cookie_header(session), "/ws/thread/")
            idle.append(tabs)
        gate = asyncio.Semaphore(50)

        async def open_idle(tabs):
            async with gate:
                await tabs.open(1, concurrency=1)

        await asyncio.gather(*(open_idle(t) for t in idle))
        await asyncio.sleep(1)
        per_socket = (server.rss_kb() - rss_before) / max(args.idle, 1)

        own_tabs = []
        for session in sender_sessions:
            tabs = Tabs(http, server, _cookie_header(session), "/ws/thread/")
            await tabs.open(1)
            own_tabs.append(tabs)
        lists, list_tasks = [], []
        for session in staff_sessions:
            ws = await http.ws_connect(
                server.url.replace("http", "ws") + "/ws/staff/inbox/",
                headers={"Cookie": _cookie_header(session), "Origin": server.url},
                heartbeat=None,
                max_msg_size=0,
            )
            listener = ListSocket()
            lists.append((ws, listener))
            list_tasks.append(asyncio.create_task(listener.read(ws)))

        started_at: dict[int, float] = {}
        sender_of: dict[int, int] = {}
        gets: list[float] = []
        stop = time.perf_counter() + args.seconds
        counter = iter(range(1, 10**9))

        async def send_loop(i: int) -> None:
            headers = _headers(sender_sessions[i], server.url)
            while time.perf_counter() < stop:
                mark = next(counter)
                data = {"body": f"LB{mark}E {harness.body(mark)}", "key": f"mixed-{mark}"}
                started_at[mark], sender_of[mark] = time.perf_counter(), i
                async with http.post(
                    f"{server.url}/messages/send/", data=data, headers=headers
                ) as response:
                    assert response.status == 200, response.status

        async def list_loop(session) -> None:
            headers = _headers(session, server.url)
            while time.perf_counter() < stop:
                began = time.perf_counter()
                async with http.get(f"{server.url}/staff/projects/", headers=headers) as response:
                    await response.read()
                    assert response.status == 200, response.status
                gets.append((time.perf_counter() - began) * 1000)
                await asyncio.sleep(max(0.0, 1 - (time.perf_counter() - began)))

        profiler = None
        if args.profile and args.web == 1:
            # The window alone, not the world's making or the sockets' opening.
            profiler = harness.py_spy(server.process.pid, args.profile, rate=200, mode="--gil")
            await asyncio.sleep(1)  # py-spy attached
        cpu_before, load_before = server.cpu_seconds(), os.getloadavg()[0]
        proxy_before = server.proxy_cpu_seconds() if args.web > 1 else 0.0
        each_before = [w.cpu_seconds() for w in getattr(server, "servers", [server])]
        await asyncio.gather(
            *(send_loop(i) for i in range(len(sender_sessions))),
            *(list_loop(s) for s in staff_sessions),
        )
        cpu = server.cpu_seconds() - cpu_before
        proxy_cpu = server.proxy_cpu_seconds() - proxy_before if args.web > 1 else 0.0
        each = [
            w.cpu_seconds() - b
            for w, b in zip(getattr(server, "servers", [server]), each_before, strict=True)
        ]
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(timeout=30)
        await asyncio.sleep(args.drain)

        to_tab, tab_missing = [], 0
        for mark, began in started_at.items():
            arrivals = own_tabs[sender_of[mark]].arrived.get(mark)
            if arrivals:
                to_tab.append((arrivals[0] - began) * 1000)
            else:
                tab_missing += 1
        newest_mark: dict[int, int] = {}
        for mark, i in sender_of.items():
            project = project_of[senders[i].pk]
            newest_mark[project] = max(newest_mark.get(project, 0), mark)
        to_list, superseded, lost = [], 0, 0
        for _, listener in lists:
            for mark, began in started_at.items():
                if mark in listener.arrived:
                    to_list.append((listener.arrived[mark] - began) * 1000)
                else:
                    superseded += 1
            for project, mark in newest_mark.items():
                lost += listener.newest.get(project, 0) < mark
        sends = len(started_at)
        rows += [
            [f"{args.idle:,} idle tabs of {args.idle:,} customers: memory per socket",
             f"{per_socket:.1f} KB"],
            [f"sends in {args.seconds:.0f} s ({args.senders} customers back to back)",
             f"{sends:,} ({sends / args.seconds:.1f}/s)"],
            ["POST → sender's other tab: p50 / p99",
             f"{p(to_tab, 50):.0f} / {p(to_tab, 99):.0f} ms ({tab_missing} missing)"],
            [f"POST → staff list socket ({args.staff} sockets): p50 / p99",
             f"{p(to_list, 50):.0f} / {p(to_list, 99):.0f} ms"],
            ["  rows superseded before arriving / newest state lost",
             f"{superseded / max(sends * len(lists), 1):.1%} / {lost}"],
            [f"staff list GET ({args.projects:,} projects, {args.staff} staff each second): "
             "p50 / p99", f"{p(gets, 50):.0f} / {p(gets, 99):.0f} ms ({len(gets)} GETs)"],
            ["server CPU over the window"
             + (f" (summed over {args.web} web processes)" if args.web > 1 else ""),
             f"{cpu / args.seconds:.0%} of one core"],
        ]  # fmt: skip
        if args.web > 1:
            rows += [
                ["  each web process", " / ".join(f"{c / args.seconds:.0%}" for c in each)],
                ["  Caddy's CPU over the window", f"{proxy_cpu / args.seconds:.0%} of one core"],
            ]
        rows += [
            ["load average (1 min) at start / end",
             f"{load_before:.2f} / {os.getloadavg()[0]:.2f}"],
        ]  # fmt: skip
        for ws, _ in lists:
            await ws.close()
        for task in list_tasks:
            task.cancel()
        for tabs in [*idle, *own_tabs]:
            await tabs.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--projects", type=int, default=10_000)
    parser.add_argument("--idle", type=int, default=1000, help="idle customer tabs")
    parser.add_argument("--staff", type=int, default=5)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy (--gil) on the web process during the window, into this file (collapsed "
        "stacks, for bench.profile_top); its cost is in the window's figures; --web 1 only",
    )
    parser.add_argument("--drain", type=float, default=5, help="seconds to wait for last frames")
    parser.add_argument("--server", default=harness.PRODUCTION_SERVER, choices=harness.SERVERS)
    parser.add_argument(
        "--web", type=int, default=1, help="web processes (deploy/web.sh) behind Caddy; 1: no proxy"
    )
    args = parser.parse_args(argv)
    if args.web > 1 and args.server != harness.PRODUCTION_SERVER:
        harness.refuse("--web N runs deploy/web.sh processes behind Caddy")
    if args.idle + args.senders > args.projects:
        harness.refuse("--projects must cover the idle and sending customers")

    database_url, redis_url = harness.setup_django()
    import resource

    from bench.pages import fill_project_list
    from portal.models import Project
    from tests.factories import StaffUserFactory

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.idle + 512)), hard))
    shape = f" × {args.web} behind Caddy (deploy/Caddyfile)" if args.web > 1 else ""
    print(f"bench.mixed · {harness.machine()} · server {args.server}{shape}")
    harness.reset(redis_url)
    world = harness.build_world(customers=args.projects)
    fill_project_list(world)
    staff_users = [world.staff] + [
        StaffUserFactory(username=f"mixed-staff-{i}", password=None) for i in range(1, args.staff)
    ]
    project_of = dict(Project.objects.values_list("customer_id", "pk"))
    harness.analyze()
    if args.web > 1:
        server = harness.start_cluster(
            database_url, redis_url, web=args.web, EMAIL_NOTIFICATION_DELAY_SECONDS="120"
        )
    else:
        server = harness.start_server(
            database_url, redis_url, server=args.server, EMAIL_NOTIFICATION_DELAY_SECONDS="120"
        )
    try:
        rows = asyncio.run(run(args, server, world, staff_users, project_of))
    finally:
        server.stop()
    print(harness.table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""SMTP throughput, failure-free and under greylisting, as a user runs `campaign send`.

    python bench/bench_smtp.py --messages 20000 --connections 4 --runs 3

Builds a one-activity email campaign (bench_send.py's project) once, then for each run and each
server sends it again with `campaign send --yes` in a child process, after emptying the delivery
log. The servers, each in a process of its own:

* postfix's `smtp-sink` (/usr/sbin/smtp-sink), which measures the sender rather than a server;
* this file's sink (`--serve`), an asyncio SMTP server offering PIPELINING that counts each
  Message-ID it accepts, with no failure, then answering 451 to the first RCPT of one address in
  five (greylisting, as real relays do). It tells whether every message arrived exactly once.

Prints the median messages/s of each server (delivering time from the run's log, as bench_send),
and the ratio greylisted / failure-free on the same server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_send import PEOPLE, RAW, write_project  # noqa: E402

SMTP_SINK = "/usr/sbin/smtp-sink"


# -- the bench's own server --------------------------------------------------------------------
class _Session(asyncio.Protocol):
    """One SMTP connection: commands a line at a time (pipelined or not), then the data up to "."."""

    def __init__(self, server: _Sink):
        self.server, self.buffer, self.data, self.rcpt = server, b"", None, None

    def connection_made(self, transport):
        self.transport = transport
        transport.write(b"220 bench ESMTP\r\n")

    def data_received(self, chunk: bytes) -> None:
        self.buffer += chunk
        replies = []
        while True:
            if self.data is not None:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    break
                self.data.append(self.buffer[:end])
                self.buffer = self.buffer[end + 5 :]
                replies.append(self.server.accept(b"".join(self.data)))
                self.data = None
                continue
            line, sep, rest = self.buffer.partition(b"\r\n")
            if not sep:
                break
            self.buffer = rest
            replies.append(self.command(line))
            if self.transport.is_closing():
                return
        if replies:
            self.transport.write(b"".join(replies))

    def command(self, line: bytes) -> bytes:
        verb = line[:4].upper()
        if verb in (b"EHLO", b"HELO"):
            return b"250-bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10240000\r\n"
        if verb == b"MAIL":
            self.rcpt = None
            return b"250 2.1.0 Ok\r\n"
        if verb == b"RCPT":
            address = line[line.find(b"<") + 1 : line.rfind(b">")]
            if self.server.refuse(address):
                return b"451 4.7.1 Greylisted, try again later\r\n"
            self.rcpt = address
            return b"250 2.1.5 Ok\r\n"
        if verb == b"DATA":
            if self.rcpt is None:
                return b"554 5.5.1 No valid recipients\r\n"
            self.data = [b"\r\n"]  # so that a Message-ID on the first line is found like the others
            return b"354 End data with <CR><LF>.<CR><LF>\r\n"
        if verb == b"RSET":
            self.rcpt = None
            return b"250 2.0.0 Ok\r\n"
        if verb == b"QUIT":
            self.transport.write(b"221 2.0.0 Bye\r\n")
            self.transport.close()
            return b""
        return b"250 2.0.0 Ok\r\n"  # NOOP and the rest


class _Sink:
    """What the server accepted (Message-IDs, counted) and refused."""

    def __init__(self, greylist: int):
        self.greylist, self.ids, self.seen, self.refused = greylist, Counter(), set(), 0

    def refuse(self, address: bytes) -> bool:
        """451 to the first RCPT of one address in `greylist` (0: never)."""
        if not self.greylist or zlib.crc32(address) % self.greylist or address in self.seen:
            return False
        self.seen.add(address)
        self.refused += 1
        return True

    def accept(self, data: bytes) -> bytes:
        start = data.find(b"\r\nMessage-ID:")
        end = data.find(b">", start)
        self.ids[data[start + 13 : end + 1].strip() if start >= 0 else b"?"] += 1
        return b"250 2.0.0 Ok: queued\r\n"


def serve(port: int, greylist: int, report: str) -> None:
    """Serve until SIGTERM, then write what was accepted to `report` (JSON)."""
    sink = _Sink(greylist)

    async def run():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Session(sink), "127.0.0.1", port, reuse_address=True)
        stop = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
        print("ready", flush=True)
        await stop
        server.close()

    asyncio.run(run())
    counts = Counter(sink.ids.values())
    Path(report).write_text(json.dumps({"received": sum(sink.ids.values()), "refused": sink.refused, "times": counts}))


# -- the runs ----------------------------------------------------------------------------------
def start_server(kind: str, port: int, report: Path) -> subprocess.Popen:
    if kind == "smtp-sink":
        # -c: count; 1000: backlog. smtp-sink offers PIPELINING and answers 250 to everything.
        command = [SMTP_SINK, "-u", "nobody", f"127.0.0.1:{port}", "1000"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_port(port)
        return process
    greylist = "5" if kind == "greylisting" else "0"
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--greylist", greylist, "--report", str(report)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "ready"
    return process


def _wait_for_port(port: int) -> None:
    import socket

    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"smtp-sink did not listen on {port}")


def one_run(project: Path, kind: str, port: int, messages: int) -> float:
    """Messages/s of one send to a fresh server of this `kind`; exits when a message is missing or doubled."""
    _sql(project, "delete from main.campaign_deliveries; delete from main.campaign_runs")
    report = project / f"{kind}.json"
    server = start_server(kind, port, report)
    try:
        sent = subprocess.run(
            [sys.executable, "-m", "campaign_compiler", "--project-dir", str(project), "send", "bench", "--yes"],
            capture_output=True,
            text=True,
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()
    if sent.returncode:
        sys.exit(sent.stderr)
    ((delivering, count),) = _sql(
        project,
        "select extract(epoch from max(finished_at) - max(started_at)), "
        "(select count(*) from main.campaign_deliveries where status = 'sent') from main.campaign_runs",
    )
    if count != messages:
        sys.exit(f"{kind}: {count} of {messages} messages logged sent")
    if kind != "smtp-sink":
        received = json.loads(report.read_text())
        if received["times"] != {"1": messages}:
            sys.exit(f"{kind}: not every message received exactly once: {received}")
    return count / float(delivering)


def _sql(project: Path, sql: str):
    import duckdb

    with duckdb.connect(str(project / "target" / "bench.duckdb")) as connection:
        result = connection.execute(sql)
        return result.fetchall() if result.description else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--servers", default="smtp-sink,sink,greylisting")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--greylist", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve, args.greylist, args.report)
    with tempfile.TemporaryDirectory() as tmp:
        project, port = Path(tmp) / "project", _free_port()
        build(project, args.messages, port, args.connections)
        kinds = args.servers.split(",")
        rates: dict[str, list[float]] = {kind: [] for kind in kinds}
        for run in range(args.runs):  # interleaved, so that the machine's load weighs on each alike
            for kind in kinds:
                rates[kind].append(one_run(project, kind, port, args.messages))
                print(f"run {run + 1} {kind}: {rates[kind][-1]:,.0f} msg/s", file=sys.stderr, flush=True)
    medians = {kind: statistics.median(values) for kind, values in rates.items()}
    print(f"{args.messages:,} emails, {args.connections} connections, median of {args.runs} runs:")
    for kind, value in medians.items():
        print(f"  {kind:<12} {value:>8,.0f} msg/s   (runs: {', '.join(f'{v:,.0f}' for v in rates[kind])})")
    if "sink" in medians and "greylisting" in medians:
        print(f"  greylisting / failure-free on the same server: {medians['greylisting'] / medians['sink']:.2f}")


def build(project: Path, messages: int, port: int, connections: int) -> None:
    """The campaign of `messages` emails, built once (the runs send it again and again)."""
    settings = {
        "provider": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "from": "bench@example.com",
        "connections": connections,
    }
    write_project(project, "email", settings)
    (project / "target").mkdir()
    _sql(
        project,
        f"create schema {RAW}; create table {RAW}.people as {PEOPLE.format(i='i', text='varchar')} from range({messages}) as r(i)",
    )
    built = subprocess.run(
        [sys.executable, "-m", "campaign_compiler", "--project-dir", str(project), "count", "bench", "--json"],
        capture_output=True,
        text=True,
    )
    if built.returncode:
        sys.exit(built.stderr)
    assert json.loads(built.stdout)["counts"]["message"] == messages


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


if __name__ == "__main__":
    main()

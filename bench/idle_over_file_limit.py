#!/usr/bin/env python3
"""1,100 idle connections to a server started under `ulimit -n 1024` (soft and hard).

Usage: bench/idle_over_file_limit.py AUTHLOG_BINARY [SERVE_FLAGS...]
Prints the server's CPU time over 2 s with the connections open, and how long a client then
waits for GET /healthz (15 s at most). A server that retries accept() at once on EMFILE spins
a core here and never answers.
"""
import os, socket, subprocess, sys, tempfile, time, urllib.request

binary = sys.argv[1]
directory = tempfile.mkdtemp()
server = subprocess.Popen(
    ["sh", "-c", 'ulimit -n 1024 && exec "$0" "$@"', binary,
     "--database-url", f"sqlite://{directory}/bench.db", "serve", "--bind", "127.0.0.1:0", *sys.argv[2:]],
    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
base = server.stdout.readline().strip().replace("authlog listening on ", "")
host, port = base.replace("http://", "").split(":")


def cpu_seconds():
    fields = open(f"/proc/{server.pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


try:
    opening = time.monotonic()
    # Past the server's connection cap the kernel's accept queue fills and connect() waits:
    # those connections get in only as the header-read timeout cuts earlier ones off.
    idle = [socket.create_connection((host, int(port)), timeout=60) for _ in range(1100)]
    print(f"1,100 connections open after {time.monotonic() - opening:.1f} s")
    time.sleep(0.5)
    before = cpu_seconds()
    time.sleep(2)
    print(f"server CPU over 2 s with 1,100 idle connections: {cpu_seconds() - before:.2f} s")
    started = time.monotonic()
    try:
        urllib.request.urlopen(base + "/healthz", timeout=15).read()
        print(f"a client was served after {time.monotonic() - started:.2f} s")
    except OSError as e:
        print(f"a client gave up after {time.monotonic() - started:.2f} s: {e}")
finally:
    server.kill()

#!/usr/bin/env python3
"""Stay connected to a Ruster daemon and print proactive events as they arrive.

Usage:
    python3 examples/listen.py [SOCKET] SESSION [SESSION ...]
    python3 examples/listen.py work
    python3 examples/listen.py /tmp/ruster.sock work home
    python3 examples/listen.py --json work          # raw JSON lines

SOCKET is the daemon's socket: an argument containing "/" (session ids never
do), else $RUSTER_SOCKET, else /tmp/ruster.sock. Each SESSION is subscribed
to, and created first if it does not exist. Then every reminder, heartbeat
finding and external event of those sessions is printed as one line, and so
is every keepalive. Proactive messages that fell due while no client was
listening are delivered when the subscription starts, so nothing is missed.

If the connection drops (the daemon restarted), it reconnects every few
seconds. Stop it with Ctrl-C. Python 3 standard library only.
"""

import argparse
import json
import os
import socket
import sys
import time

RETRY_SECS = 3


def parse_args():
    ap = argparse.ArgumentParser(description="Print a Ruster daemon's proactive events.")
    ap.add_argument("args", nargs="+", metavar="[SOCKET] SESSION",
                    help="optional socket path (contains '/'), then session ids")
    ap.add_argument("--json", action="store_true", help="print each event as received (JSON)")
    ap.add_argument("--no-keepalive", action="store_true", help="do not print keepalives")
    a = ap.parse_args()
    path = None
    sessions = []
    for arg in a.args:
        if "/" in arg and path is None:
            path = arg
        else:
            sessions.append(arg)
    if not sessions:
        ap.error("name at least one session")
    a.socket = path or os.environ.get("RUSTER_SOCKET") or "/tmp/ruster.sock"
    a.sessions = sessions
    return a


def show(event, args):
    kind = event.get("event")
    if kind == "keepalive" and args.no_keepalive:
        return
    if args.json:
        print(json.dumps(event), flush=True)
    elif kind == "proactive":
        ts = event.get("ts") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        print(f"{ts} [{event.get('session_id')}] {event.get('kind', 'proactive')}: "
              f"{event.get('message', '')}", flush=True)
    elif kind == "keepalive":
        print(f"{event.get('ts', '')} keepalive", flush=True)


def listen(args):
    """One connection: subscribe, then print events until it closes."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(args.socket)
    with conn:
        send = lambda req: conn.sendall((json.dumps(req) + "\n").encode())
        for s in args.sessions:
            send({"action": "subscribe", "session_id": s, "id": "sub:" + s})
        print(f"listening on {args.socket} to {', '.join(args.sessions)}",
              file=sys.stderr, flush=True)
        for line in conn.makefile("r", encoding="utf-8"):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            kind = event.get("event")
            rid = str(event.get("id", ""))
            if kind == "error" and rid.startswith("sub:") and event.get("code") == "session_not_found":
                # Not there yet: create it (which subscribes too).
                send({"action": "create", "session_id": rid[4:], "id": "create:" + rid[4:]})
            elif kind == "error":
                print(f"error {event.get('code')}: {event.get('message')}", file=sys.stderr, flush=True)
            elif kind == "shutdown":
                print("the daemon is shutting down", file=sys.stderr, flush=True)
            elif kind in ("proactive", "keepalive"):
                show(event, args)


def main():
    args = parse_args()
    while True:
        try:
            listen(args)
            print("connection closed; reconnecting", file=sys.stderr, flush=True)
        except OSError as e:
            print(f"cannot reach {args.socket}: {e}; retrying in {RETRY_SECS} s",
                  file=sys.stderr, flush=True)
        time.sleep(RETRY_SECS)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)

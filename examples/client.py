#!/usr/bin/env python3
"""Send one message to a running Ruster daemon and print the reply as it streams.

Usage:
    python3 examples/client.py [SOCKET] [MESSAGE ...]
    python3 examples/client.py /tmp/ruster.sock "What is a UNIX socket?"
    python3 examples/client.py --session work --model llamacpp/smollm2 /tmp/ruster.sock Hi

SOCKET is the daemon's socket: the first argument, else $RUSTER_SOCKET, else
/tmp/ruster.sock. The rest of the arguments are the message (default: a short
question). The session (--session, default "demo") is created if it does not
exist, else resumed. --model sets the session's model, e.g. ollama/llama3.2.

Reasoning text of thinking models is shown dimmed, and only on a terminal.
Exit status: 0 when the reply is complete, 1 on an error (its code and message
go to stderr). Python 3 standard library only.
"""

import argparse
import json
import os
import socket
import sys

DEFAULT_QUESTION = "In one sentence: what are you, and where are you running?"


def main():
    ap = argparse.ArgumentParser(description="Stream one reply from a Ruster daemon.")
    ap.add_argument("socket", nargs="?", help="socket path (default: $RUSTER_SOCKET or /tmp/ruster.sock)")
    ap.add_argument("message", nargs="*", help="the message to send")
    ap.add_argument("-s", "--session", default="demo", help="session id (default: demo)")
    ap.add_argument("-m", "--model", help="model for the session, e.g. ollama/llama3.2")
    args = ap.parse_args()

    path = args.socket or os.environ.get("RUSTER_SOCKET") or "/tmp/ruster.sock"
    message = " ".join(args.message) or DEFAULT_QUESTION

    create = {"action": "create", "session_id": args.session, "id": "create"}
    if args.model:
        create["model"] = args.model
    send = {"action": "send", "session_id": args.session, "message": message, "id": "send"}

    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(path)
    except OSError as e:
        print(f"cannot connect to {path}: {e} (is the daemon running?)", file=sys.stderr)
        return 1

    with conn:
        # One JSON object per line, each ended by "\n".
        for request in (create, send):
            conn.sendall((json.dumps(request) + "\n").encode())

        dim = sys.stdout.isatty()
        wrote = False  # whether a line of output is open
        for line in conn.makefile("r", encoding="utf-8"):
            event = json.loads(line)
            kind = event.get("event")
            # Another id: the answer to another client's request in this session.
            if event.get("id") not in (None, "create", "send"):
                continue
            if kind == "error":
                if wrote:
                    print()
                print(f"error {event.get('code')}: {event.get('message')}", file=sys.stderr)
                return 1
            if kind == "thinking" and dim:
                sys.stdout.write("\x1b[2m" + event["delta"] + "\x1b[0m")
                sys.stdout.flush()
                wrote = True
            elif kind == "response":
                sys.stdout.write(event["delta"])
                sys.stdout.flush()
                wrote = True
                if event["done"]:
                    sys.stdout.write("\n")
                    return 0

    print("the daemon closed the connection before the reply ended", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())

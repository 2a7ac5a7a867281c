"""moto's server, serving one request at a time.

DynamoDB applies every write atomically: a conditional update, a transaction,
a conditional put. moto's threaded server does not: it evaluates a condition
and applies the update with no lock between, and a cancelled transaction
restores a snapshot over writes that ran meanwhile. Concurrency tests against
it then pass or fail by luck. Holding one lock around the whole WSGI call
(including reading the response body, which moto builds lazily) gives each
request the isolation DynamoDB gives it. Connections are still accepted on
threads, so keep-alive clients never block one another while idle.

Usage: python moto_atomic.py [-H host] [-p port] [--port-file PATH]
Port 0 picks a free port; the chosen one is written to --port-file (and
printed), so the caller never races another process for a port.
"""

import argparse
import os
import signal
import sys
import threading

from werkzeug.serving import make_server

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def serialized(app):
    lock = threading.Lock()

    def wrapped(environ, start_response):
        with lock:
            result = app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        return [body]

    return wrapped


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument(
        "--threaded-unsafe",
        action="store_true",
        help="serve without the lock, as plain moto_server does (to show the tests catch it)",
    )
    args = parser.parse_args()

    app = DomainDispatcherApplication(create_backend_app)
    if not args.threaded_unsafe:
        app = serialized(app)
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    port = server.socket.getsockname()[1]
    # moto builds some URLs (SQS queue URLs) from MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.replace(tmp, args.port_file)
    print(f"moto listening on http://{args.host}:{port}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()


if __name__ == "__main__":
    main()

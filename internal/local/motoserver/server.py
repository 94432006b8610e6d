"""moto_server as Flagline runs it: the same application as the
`moto_server` command, except that DynamoDB and DynamoDB Streams requests
are served one at a time.

DynamoDB applies each conditional write atomically; moto's threaded server
does not (two concurrent UpdateItem calls with the same condition can both
succeed). Flagline's exactly-once counting rests on those conditions, so the
local stand-in must keep them. Other services (SNS, SQS) stay concurrent,
so SQS long polls do not stall DynamoDB.
"""
import argparse
import os
import signal
import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))

    app = DomainDispatcherApplication(create_backend_app)
    dynamodb = threading.Lock()

    def serve(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with dynamodb:
                return list(app(environ, start_response))
        return app(environ, start_response)

    run_simple(args.host, args.port, serve, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()

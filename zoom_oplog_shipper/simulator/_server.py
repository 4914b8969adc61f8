"""A threading wsgiref server for the simulator: HTTP/1.1 keep-alive and real dropped connections."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import sys
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Any, cast
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from zoom_oplog_shipper.simulator._app import SimulatedDisconnectError, Simulator


class _Handler(ServerHandler):
    """wsgiref's handler, answering HTTP/1.1 and turning SimulatedDisconnectError into a closed socket."""

    http_version = "1.1"
    dropped = False

    def handle_error(self) -> None:
        """Drop the connection for a simulated disconnect; otherwise answer 500 as wsgiref does."""
        if isinstance(sys.exc_info()[1], SimulatedDisconnectError):
            self.dropped = True
            return
        super().handle_error()


class _RequestHandler(WSGIRequestHandler):
    """Serves requests on one connection until the client closes it (keep-alive)."""

    protocol_version = "HTTP/1.1"
    wbufsize = -1  # buffered: status line, headers and body leave in one send
    disable_nagle_algorithm = True
    timeout = 120  # an idle keep-alive connection frees its thread after this

    def handle(self) -> None:
        """Handle requests until the connection closes, times out or a fault drops it."""
        self.close_connection = True
        self._handle_one()
        while not self.close_connection:
            self._handle_one()

    def _handle_one(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except (TimeoutError, ConnectionError, OSError):
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            self.close_connection = True
            return
        if not self.parse_request():
            return
        wfile = cast(IO[bytes], self.wfile)  # a BufferedWriter at run time
        handler = _Handler(self.rfile, wfile, self.get_stderr(), self.get_environ(), multithread=True)
        handler.request_handler = self  # type: ignore[attr-defined]  # wsgiref's back-pointer
        handler.run(self.server.get_app())  # type: ignore[attr-defined]
        if handler.dropped:
            self.close_connection = True
            return
        try:
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Access log on stderr only when the server is verbose."""
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)


class SimulatorServer(socketserver.ThreadingMixIn, WSGIServer):
    """wsgiref's server with a thread per connection; tracks connections to close them at stop."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], verbose: bool = False) -> None:
        """Bind to ``address`` (IPv4 or IPv6 literal host)."""
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.verbose = verbose
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the host name."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)
        self.setup_environ()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Remember the connection so ``close_connections`` can end idle keep-alives."""
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget the connection, then close it."""
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every open connection (idle keep-alive threads then exit)."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Client resets are routine under fault injection; report anything else."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


@dataclass
class RunningServer:
    """A simulator served on a background thread; ``base_url`` is like ``http://127.0.0.1:PORT``."""

    server: SimulatorServer
    thread: threading.Thread
    base_url: str
    simulator: Simulator

    def shutdown(self) -> None:
        """Stop serving, close open connections and the listening socket, join the thread."""
        self.server.shutdown()
        self.server.close_connections()
        self.server.server_close()
        self.thread.join(timeout=10)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()


def serve_in_thread(sim: Simulator, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False) -> RunningServer:
    """Serve ``sim`` on ``host:port`` (0 picks a free port) from a daemon thread."""
    server = SimulatorServer((host, port), verbose=verbose)
    server.set_app(sim.app)
    bound_port = server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.2},
        name=f"zoom-simulator-{bound_port}",
        daemon=True,
    )
    thread.start()
    return RunningServer(server, thread, f"http://{shown}:{bound_port}", sim)

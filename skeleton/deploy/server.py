"""``skeleton serve``: the HTTP routes over :class:`~skeleton.deploy.model_queues.ModelServer`.

Routes (OpenAPI docs at /docs):
- POST /v1/models/{name}/predict and, with one model loaded, POST /predict: {"inputs": text |
  [text, ...] | [[text1, text2], ...] (pair tasks), "raw_scores": false, "truncate": true} ->
  per input, every label with its score, highest first (text-embeddings-inference's /predict shape).
- GET /v1/models, GET /health (liveness), GET /ready (every model loaded and warmed up),
  GET /metrics (Prometheus text format).
Errors are JSON {"error": message, "error_type": kind} with the status that says why.

With an API key, every route but /health needs ``Authorization: Bearer <key>`` (401 otherwise, the key
compared in constant time). On SIGTERM the server drains: the listener stops taking new connections and
closes (a client too late is refused at connect time, never reset after connecting), /ready turns 503,
every request on an open connection is still answered (with ``Connection: close``), and the remaining idle
connections close once quiet or after ``drain_seconds``.
"""

import asyncio
import ctypes
import errno
import hmac
import socket
import sys
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from skeleton.core.config import ServeConfig
from skeleton.core.errors import SkeletonError
from skeleton.deploy.model_queues import ModelServer, RequestError

# no "from __future__ import annotations" here: FastAPI reads the route annotations at run time


class PredictRequest(BaseModel):
    """A prediction request, as text-embeddings-inference's /predict takes it."""

    model_config = ConfigDict(strict=True)

    inputs: str | list[str] | list[list[str]]
    raw_scores: bool = False
    truncate: bool = True


class LabelScore(BaseModel):
    label: str
    score: float


Scores = list[LabelScore] | list[list[LabelScore]]


def _error(status: int, message: str, kind: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "error_type": kind}, status_code=status, headers=headers)


HTTP_ERROR_KINDS = {404: "not_found", 405: "method_not_allowed"}


def _problem(error: dict) -> str:
    """One validation error of a request as a sentence: where in the body, and what is wrong."""
    if error.get("type") == "json_invalid":  # pydantic's location is the character offset
        return f"the body is not valid JSON (at character {error['loc'][-1]}: {error.get('ctx', {}).get('error')})"
    where = ".".join(str(p) for p in error["loc"][1:]) or "body"
    return f"{where}: {error['msg']}"


def create_app(server: ModelServer) -> FastAPI:
    """The FastAPI app serving ``server``'s models (batchers start with the app, stop with it)."""

    @asynccontextmanager
    async def lifespan(app):
        await server.start()
        yield
        await server.stop()

    # the docs page's scripts and styles are served by the server itself (fastapi-offline's copies), not a CDN
    app = FastAPIOffline(
        title="Skeleton",
        summary="Text classification with slim (task-neuron pruned) models",
        lifespan=lifespan,
    )
    _error_handlers(app, server)
    _guards(app, server)
    _prediction_routes(app, server)
    _service_routes(app, server)
    return app


def _error_handlers(app: FastAPI, server: ModelServer) -> None:
    """Every refusal as JSON with its status, counted per model in the metrics."""

    def count(request: Request, status: int) -> None:
        name = request.path_params.get("name")
        if name is None and len(server.models) == 1:
            name = next(iter(server.models))
        if name in server.models:
            server.metrics.requests.labels(name, str(status)).inc()

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        count(request, 422)
        return _error(422, "; ".join(map(_problem, exc.errors()[:3])) or "invalid request", "validation")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        # FastAPI's own refusals (404 no such route, 405 wrong method) in the shape of every other error
        kind = HTTP_ERROR_KINDS.get(exc.status_code, "http_error")
        return _error(exc.status_code, str(exc.detail), kind, dict(exc.headers or {}))

    @app.exception_handler(RequestError)
    async def refused(request: Request, exc: RequestError):
        count(request, exc.status)
        return _error(exc.status, str(exc), exc.kind, exc.headers)


class _Guard:
    """The API key on every route but /health, and ``Connection: close`` on every answer while draining.

    A plain ASGI middleware: Starlette's ``@app.middleware("http")`` wraps every request in task groups and
    memory streams, which cost the event loop (the one core that tokenizes and answers) a share per request
    under load."""

    def __init__(self, app, server: ModelServer):
        self.app, self.server = app, server
        self.key = (server.config.api_key or "").encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.key and scope["path"] != "/health":
            given = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            scheme, _, token = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.key):
                refusal = _error(401, "missing or wrong API key", "unauthorized", {"WWW-Authenticate": "Bearer"})
                return await refusal(scope, receive, send)

        async def closing(message):
            if message["type"] == "http.response.start" and self.server.draining:
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, closing)


def _guards(app: FastAPI, server: ModelServer) -> None:
    """The API key and the drain's ``Connection: close`` (:class:`_Guard`), outermost."""
    app.add_middleware(_Guard, server=server)


def _prediction_routes(app: FastAPI, server: ModelServer) -> None:
    async def predict(name: str | None, body: PredictRequest):
        model = server.model(name)
        result = await model.predict(body.inputs, raw_scores=body.raw_scores, truncate=body.truncate)
        server.metrics.requests.labels(model.name, "200").inc()
        return result

    @app.post("/v1/models/{name}/predict", response_model=Scores, summary="Classify with the named model")
    async def predict_named(name: str, body: PredictRequest):
        return await predict(name, body)

    @app.post("/predict", response_model=Scores, summary="Classify (when one model is served)")
    async def predict_only(body: PredictRequest):
        return await predict(None, body)


def _service_routes(app: FastAPI, server: ModelServer) -> None:
    @app.get("/v1/models", summary="The served models")
    async def models():
        return {"models": [m.describe() for m in server.models.values()]}

    @app.get("/health", summary="Liveness")
    async def health():
        return {"status": "ok"}

    @app.get("/ready", summary="Every model loaded and answering")
    async def ready():
        if server.draining:
            return _error(503, "shutting down", "unavailable")
        if server.warm_up_error:
            return _error(503, server.warm_up_error, "backend")
        if not server.ready:
            return _error(503, f"warming up: {server.warming} run", "unavailable", {"Retry-After": "1"})
        seconds = {name: round(model.warm_up_seconds, 2) for name, model in server.models.items()}
        return {"status": "ready", "models": list(server.models), "warm_up_seconds": seconds}

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics():
        body, content_type = server.metrics.text()
        return Response(body, media_type=content_type)


def _draining_server(server: ModelServer, settings):
    """A uvicorn server that drains before it shuts down (see the module's docstring)."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        async def shutdown(self, sockets=None):
            server.draining = True
            await _stop_listening(self.servers)  # refuse new connections; the accepted ones stay open
            deadline = time.monotonic() + server.config.drain_seconds
            quiet_since = time.monotonic()
            while self.server_state.connections and time.monotonic() < deadline:
                busy = any(_awaited(c) for c in self.server_state.connections) or server.busy
                if busy:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > 1.0:  # every open connection idle for a second
                    break
                await asyncio.sleep(0.02)
            await super().shutdown(sockets)

    return DrainingServer(settings)


async def _stop_listening(listeners) -> None:
    """Close the listening sockets without resetting a connection a client completed: new connection
    requests are dropped first (:func:`refuse_new_connections`), the loop stops accepting and lets the
    connections it already accepted attach to their server (asyncio asserts the server is open when they
    do, and closes them if not), then the ones the kernel completed and nobody accepted yet are taken in,
    the listeners close, and those are served.

    asyncio has no public call for this; where its server lacks the attributes used, the listener
    just closes (and queued connections are reset by the kernel, as with a plain close)."""
    loop = asyncio.get_running_loop()
    listening = []
    for listener in listeners:
        factory = getattr(listener, "_protocol_factory", None)
        for wrapped in listener.sockets if factory else ():
            raw = getattr(wrapped, "_sock", None)
            if raw is not None:
                refuse_new_connections(raw)  # else one completed between the last accept and the close is reset
                loop.remove_reader(raw.fileno())
                listening.append((factory, raw))
    await asyncio.sleep(0)  # the tasks of the connections the loop accepted run before this resumes (FIFO)
    waiting = [(factory, connection) for factory, raw in listening for connection in _accept_queued(raw)]
    for listener in listeners:
        listener.close()
    for factory, connection in waiting:
        await loop.connect_accepted_socket(factory, connection)


def _accept_queued(sock: socket.socket) -> list[socket.socket]:
    """Every connection waiting in a listening socket's accept queue, non-blocking."""
    accepted = []
    while True:
        try:
            connection, _ = sock.accept()
        except (BlockingIOError, InterruptedError, OSError):
            return accepted
        connection.setblocking(False)
        accepted.append(connection)


class _BpfInstruction(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _BpfProgram(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_BpfInstruction))]


# a classic BPF socket filter on a TCP listener sees each packet from its TCP header: load the flags byte
# (offset 13); SYN set (a new connection's first packet) -> keep 0 bytes (drop), else keep it all
_DROP_SYN = (
    (0x30, 0, 0, 13),  # BPF_LD | BPF_B | BPF_ABS: A = packet[13]
    (0x45, 0, 1, 0x02),  # BPF_JMP | BPF_JSET | BPF_K: if A & SYN, next, else skip one
    (0x06, 0, 0, 0),  # BPF_RET | BPF_K: drop
    (0x06, 0, 0, 0xFFFFFFFF),  # BPF_RET | BPF_K: accept
)
_SO_ATTACH_FILTER = 26  # Linux's value (socket.SO_ATTACH_FILTER is not exported by Python)


def refuse_new_connections(sock: socket.socket) -> bool:
    """Make the kernel drop new connection requests to the listening ``sock`` (Linux: a socket filter that
    drops SYN packets), while the handshakes already under way complete into its accept queue. A dropped
    client retries its SYN about a second later and, the listener closed by then, is refused at connect time:
    no connection can complete between the drain's last accept and the close, to be reset by the close.
    Returns whether the filter is in place (False off Linux, where the close may reset such a connection)."""
    if not sys.platform.startswith("linux"):
        return False
    instructions = (_BpfInstruction * len(_DROP_SYN))(*(_BpfInstruction(*i) for i in _DROP_SYN))
    program = _BpfProgram(len(_DROP_SYN), instructions)
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, bytes(program))
    except OSError:
        return False
    return True


def _awaited(connection) -> bool:
    """Whether the drain waits for a uvicorn connection (h11 and httptools protocols alike): one with a request
    in progress, or with none yet (its client has just connected and is about to send one: closed after a quiet
    second, it would see its connection closed under its request); not an idle keep-alive connection, whose
    last answer went out."""
    cycle = getattr(connection, "cycle", None)
    return cycle is None or not cycle.response_complete


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (not yet listening: the server listens on it when it starts); one
    line naming the address when it is taken or cannot be had."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as error:
        raise SkeletonError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    # IPPROTO_TCP, not the default 0: the connections accepted from it inherit the protocol, and asyncio sets
    # TCP_NODELAY only on sockets that say TCP. Without it, an answer written in two parts (headers, body) waits
    # for the client's delayed ACK: 40 ms more per request on a keep-alive connection
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a restart reuses the port
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        why = "the port is in use (another server?)" if error.errno == errno.EADDRINUSE else error.strerror
        raise SkeletonError(f"cannot listen on {host}:{port}: {why}") from None
    sock.set_inheritable(True)
    return sock


def serve(
    models: dict[str, Path], config: ServeConfig | None = None, announce: Callable[[str], None] | None = None
) -> None:
    """Load every model and bind the port (a bad directory or a taken port fails here, in one line), then
    ``announce`` the address (and then each of the server's notes: an option a model could not use) and serve
    until SIGTERM or Ctrl-C, draining first: every request accepted is answered."""
    import uvicorn

    config = config or ServeConfig()
    server = ModelServer(models, config)
    sock = listening_socket(config.host, config.port)
    host, port = sock.getsockname()[:2]
    if announce is not None:
        announce(f"http://{f'[{host}]' if ':' in host else host}:{port}")
        for note in server.notes():
            announce(note)
    app = create_app(server)
    # asyncio's loop, not uvloop (which uvicorn prefers when installed): the drain takes in the connections
    # waiting in the accept queue through asyncio's server, and uvloop's exposes neither its socket nor its
    # protocol factory, so under uvloop the listener would just close and reset them
    settings = uvicorn.Config(app, log_level="warning", access_log=False, loop="asyncio")
    _draining_server(server, settings).run(sockets=[sock])


class ServerProcess:
    """``skeleton serve MODELS OPTIONS`` as a child process on a free loopback port, returned once
    ``/ready`` answers: for integration tests and load benchmarks that talk to a real server.

    Args:
        models: the command's model arguments (``DIR`` or ``NAME=DIR``).
        options: more command-line options, e.g. ``["--max-batch-size", "1"]``.
        timeout: seconds to wait for ``/ready``.
        api_key: handed to the server in ``SKELETON_API_KEY`` (not on its command line) and sent with the
            readiness checks.
        checkout: run the server from this source tree (its directory and ``PYTHONPATH``) instead of the
            installed one, e.g. to serve one model by two versions of the code at once.
    """

    def __init__(
        self,
        models: list[str],
        options: list[str] | tuple[str, ...] = (),
        timeout: float = 180,
        api_key: str | None = None,
        checkout: Path | None = None,
    ):
        import os
        import socket
        import subprocess
        import sys
        import tempfile
        import time

        import httpx

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile(mode="w+")
        command = [sys.executable, "-m", "cli.main", "serve", *models, "--port", str(self.port), *options]
        env = {**os.environ, **({"SKELETON_API_KEY": api_key} if api_key else {})}
        if checkout is not None:
            env["PYTHONPATH"] = str(checkout)
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.process = subprocess.Popen(
            command, stdout=self.log, stderr=subprocess.STDOUT, text=True, env=env, cwd=checkout
        )
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"skeleton serve exited with {self.process.returncode}: {self.output()}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=1, headers=self.headers).status_code == 200:
                    self.seconds_to_ready = time.monotonic() - started  # from the command's start
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"skeleton serve was not ready after {timeout:.0f} s: {self.output()}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self, timeout: float = 120) -> int:
        """SIGTERM, then wait for the drain; the exit code (``-SIGTERM`` after a clean shutdown:
        uvicorn re-raises the signal it caught)."""
        import signal

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


__all__ = ["ServerProcess", "create_app", "serve"]

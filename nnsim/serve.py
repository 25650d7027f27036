"""`nnsim serve`: the TUI in a web browser through textual-serve, one session per tab.

textual-serve starts the command anew for every browser connection, so each tab gets its
own `python -m nnsim [nnsim arguments]` process (the same interpreter as the server), its
own run and its own keys. The server binds to 127.0.0.1 unless told otherwise: a session
is a full nnsim, which can write files wherever the server runs (config, export and
checkpoint paths), so binding to every interface (0.0.0.0) hands that to anyone who can
reach the port.
"""

from __future__ import annotations

import ipaddress
import shlex
import socket
import sys
from typing import Sequence
from urllib.parse import urlsplit

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MISSING_EXTRA = ("nnsim serve: textual-serve is not installed; install it with: "
                 "pip install 'textual-serve>=1.1' (or pip install -e '.[serve]' in a clone)")
LOOPBACK_NAMES = {"localhost", "localhost.", "ip6-localhost"}


class ServeError(Exception):
    """A bad `nnsim serve` setting, reported as one line with exit code 2."""


def check_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise ServeError(f"nnsim serve: --port must be between 1 and 65535, got {port}")
    return port


def check_host(host: str, port: int) -> str:
    """The host if this machine can listen on it at `port`, else a one-line ServeError."""
    if not host.strip():
        raise ServeError("nnsim serve: --host must not be empty")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise ServeError(f"nnsim serve: unknown --host {host!r}: {reason}") from None
    family, kind, proto, _, address = infos[0]
    try:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise ServeError(f"nnsim serve: cannot listen on {host}:{port}: "
                         f"{exc.strerror or exc}") from None
    return host


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_host(host: str) -> str:
    """How a browser names `host`: this machine's name for every interface."""
    if host in ("0.0.0.0", "::", ""):
        return socket.gethostname()
    return f"[{host}]" if ":" in host else host


def app_command(nnsim_args: Sequence[str]) -> str:
    """The shell command textual-serve runs for each browser tab."""
    return shlex.join([sys.executable, "-m", "nnsim", *nnsim_args])


def make_server(nnsim_args: Sequence[str], host: str = DEFAULT_HOST,
                port: int = DEFAULT_PORT, public_url: str | None = None):
    """A textual-serve Server for nnsim; ImportError when textual-serve is missing."""
    from aiohttp import web
    from textual_serve.server import Server

    class NnsimServer(Server):
        """textual-serve's Server, with two guards for a server that runs programs:

        - the page's websocket address follows the address the browser used, so a server
          bound to 0.0.0.0 works from other machines without --public-url;
        - a browser may only connect from the page's own origin (any web page can open a
          websocket to 127.0.0.1 otherwise), and a server on a loopback address only
          answers requests addressed to a loopback name (no DNS rebinding).
        """

        def __init__(self) -> None:
            super().__init__(app_command(nnsim_args), host=host, port=port,
                             title="nnsim", public_url=public_url)
            self.fixed_url = public_url

        def allowed(self, request) -> bool:
            if is_loopback(host) and not self.fixed_url:
                requested = urlsplit(f"//{request.host}").hostname or ""
                if not is_loopback(requested):
                    return False
            origin = request.headers.get("Origin")
            if origin is None:  # not a browser page: nothing to forge
                return True
            origin_host = urlsplit(origin).netloc
            allowed = {request.host}
            if self.fixed_url:
                allowed.add(urlsplit(self.fixed_url).netloc)
            return origin_host in allowed

        async def handle_index(self, request):
            if not self.allowed(request):
                raise web.HTTPForbidden(text="nnsim serve: request refused (foreign host)")
            if not self.fixed_url:
                self.public_url = f"{request.scheme}://{request.host}"
            return await super().handle_index(request)

        async def handle_websocket(self, request):
            if not self.allowed(request):
                raise web.HTTPForbidden(text="nnsim serve: connection refused (foreign "
                                             "origin)")
            return await super().handle_websocket(request)

        async def on_startup(self, app) -> None:
            shown = self.fixed_url or f"http://{url_host(host)}:{port}"
            self.console.print(f"nnsim serve: {shown} (one nnsim session per browser tab; "
                               f"running {self.command}); Ctrl+C stops", highlight=False,
                               soft_wrap=True)
            if not is_loopback(host):
                self.console.print("nnsim serve: warning: anyone who can reach this port "
                                   "gets a full nnsim session that can write files here "
                                   "(config, export and checkpoint paths)", highlight=False,
                                   style="bold", soft_wrap=True)

    return NnsimServer()


def serve(nnsim_args: Sequence[str], host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          public_url: str | None = None) -> int:
    """Serve until Ctrl+C; a one-line error and 2 for a bad setting or a missing extra."""
    try:
        import textual_serve.server  # noqa: F401
    except ImportError:
        print(MISSING_EXTRA, file=sys.stderr)
        return 2
    try:
        check_port(port)
        check_host(host, port)
        if public_url is not None and urlsplit(public_url).scheme not in ("http", "https"):
            raise ServeError(f"nnsim serve: --public-url must start with http:// or "
                             f"https://, got {public_url!r}")
        if public_url is not None:
            public_url = public_url.rstrip("/")
        server = make_server(nnsim_args, host, port, public_url)
        server.serve()
    except ServeError as exc:
        print(exc, file=sys.stderr)
        return 2
    except OSError as exc:  # lost the port between the check and the bind
        print(f"nnsim serve: cannot listen on {host}:{port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    return 0

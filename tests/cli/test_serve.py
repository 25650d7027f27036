"""`nnsim serve`: the command line, and the TUI in a real browser (headless Chromium).

The browser test needs textual-serve (pip install -e '.[serve]'), Playwright's Python
package (pip install playwright; its driver, no browser download) and Debian's chromium
(apt-get install chromium); it skips, saying which is missing, where one is not there.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import types
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from nnsim.cli import build_serve_parser, main

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
SCREENSHOT_COPY = Path("/tmp/nnsim-serve.png")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium() -> str | None:
    for name in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if name and os.path.exists(name):
            return name
    return None


@pytest.fixture
def fake_textual_serve(monkeypatch):
    """textual-serve importable (installed or not) and a server that records, not serves."""
    made = []

    class FakeServer:
        def serve(self):
            pass

    def make_server(nnsim_args, host, port, public_url=None):
        made.append({"args": list(nnsim_args), "host": host, "port": port,
                     "public_url": public_url})
        return FakeServer()

    package = types.ModuleType("textual_serve")
    package.server = types.ModuleType("textual_serve.server")
    monkeypatch.setitem(sys.modules, "textual_serve", package)
    monkeypatch.setitem(sys.modules, "textual_serve.server", package.server)
    monkeypatch.setattr("nnsim.serve.make_server", make_server)
    return made


# ---------------------------------------------------------------- the command line

def test_missing_extra_is_one_line_with_the_install_command(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "textual_serve", None)  # import fails as if missing
    monkeypatch.setitem(sys.modules, "textual_serve.server", None)
    assert main(["serve", "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "textual-serve is not installed" in err and "pip install 'textual-serve>=1.1'" in err
    assert "'.[serve]'" in err


def test_default_host_is_localhost_and_the_arguments_pass_through(fake_textual_serve):
    assert build_serve_parser().parse_known_args([])[0].host == "127.0.0.1"
    port = free_port()
    args = ["--paused", "--set", "model.activation=relu", "--seed", "3"]
    assert main(["serve", "--port", str(port), *args]) == 0
    assert fake_textual_serve == [{"args": args, "host": "127.0.0.1", "port": port,
                                   "public_url": None}]


def test_a_served_lesson_is_checked_by_the_lesson_parser(fake_textual_serve, capsys):
    assert main(["serve", "--port", str(free_port()), "lesson", "dead_relu", "--paused"]) == 0
    assert fake_textual_serve[0]["args"] == ["lesson", "dead_relu", "--paused"]
    assert main(["serve", "--port", str(free_port()), "lesson", "dead_relu", "--nope"]) == 2
    assert "unrecognized arguments: --nope" in capsys.readouterr().err


def test_the_command_of_each_tab_is_this_interpreter():
    from nnsim.serve import app_command

    assert app_command(["--set", "model.hidden=[8, 8]"]) == \
        f"{sys.executable} -m nnsim --set 'model.hidden=[8, 8]'"


@pytest.mark.parametrize("args, needle", [
    (["--port", "70000"], "--port must be between 1 and 65535, got 70000"),
    (["--port", "0"], "--port must be between 1 and 65535, got 0"),
    (["--port", "eighty"], "argument --port: invalid int value: 'eighty'"),
    (["--host", "no-such-host.invalid"], "unknown --host 'no-such-host.invalid'"),
    (["--public-url", "example.org"], "--public-url must start with http:// or https://"),
    (["--set", "model.activation=nope"], "unknown activation 'nope'"),
    (["no_such.toml"], "no_such.toml"),
])
def test_bad_settings_are_one_line_with_exit_code_2(fake_textual_serve, capsys, args, needle):
    if "--port" not in args:
        args = ["--port", str(free_port()), *args]
    assert main(["serve", *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1, err
    assert fake_textual_serve == []


def test_a_port_in_use_is_one_line(fake_textual_serve, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and err.count("\n") == 1


# ---------------------------------------------------------------- in a browser

SCREEN_TEXT = """() => {
    const term = window.__nnsimTerminal;
    if (!term) return "";
    const buffer = term.buffer.active, lines = [];
    for (let y = 0; y < term.rows; y++) {
        const line = buffer.getLine(buffer.viewportY + y);
        lines.push(line ? line.translateToString(true) : "");
    }
    return lines.join("\\n");
}"""

# textual-serve's page keeps its xterm.js Terminal in a closure and draws it on a canvas
# (WebGL or 2D), so its text is not in the DOM: catch the Terminal when the page stores it
# (`this.terminal = new Terminal(...)`) and read its screen buffer.
CATCH_TERMINAL = """
Object.defineProperty(Object.prototype, "terminal", {
    configurable: true,
    set(value) {
        Object.defineProperty(this, "terminal",
                              {value, writable: true, configurable: true, enumerable: true});
        if (value && typeof value.loadAddon === "function") window.__nnsimTerminal = value;
    },
});
"""


@pytest.fixture
def served(tmp_path):
    """`nnsim serve --port P --paused` in a subprocess, its sessions writing under tmp_path."""
    pytest.importorskip("textual_serve", reason="textual-serve is not installed "
                        "(pip install -e '.[serve]')")
    port = free_port()
    log = open(tmp_path / "serve.log", "w+")
    server = subprocess.Popen([sys.executable, "-m", "nnsim", "serve", "--port", str(port),
                               "--paused"], cwd=tmp_path, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                log.seek(0)
                assert server.poll() is None, f"nnsim serve exited: {log.read()}"
                assert time.monotonic() < deadline, "nnsim serve did not listen in 15 s"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def status(url: str, headers: dict[str, str], path: str = "/") -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url + path, headers=headers),
                                    timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_foreign_hosts_and_origins_are_refused(served):
    port = served.rsplit(":", 1)[1]
    assert status(served, {}) == 200
    assert status(served, {"Host": f"evil.example:{port}"}) == 403  # DNS rebinding
    assert status(served, {"Origin": "http://evil.example"}, "/ws") == 403  # a foreign page
    assert status(served, {"Host": f"localhost:{port}"}) == 200


def test_the_tui_in_headless_chromium(served, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright's Python "
                                   "package is not installed (pip install playwright)")
    browser_path = chromium()
    if browser_path is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    shot = tmp_path / "nnsim-serve.png"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            # the page asks for a web font; nothing but the server is reachable here
            page.route("**/*", lambda route: route.continue_()
                       if route.request.url.startswith(served) else route.abort())
            page.add_init_script(CATCH_TERMINAL)
            page.goto(served + "/", wait_until="domcontentloaded")

            # its own nnsim session, paused at step 0 on the layers panel
            page.wait_for_function(f"() => /paused +step 0/.test(({SCREEN_TEXT})())",
                                   timeout=15_000)
            before = page.evaluate(SCREEN_TEXT)
            assert "1 Layers" in before and "‖∂L/∂W‖" not in before

            # one step: the status line's step count goes to 1 and the layer table with
            # its sparklines appears
            page.evaluate("() => window.__nnsimTerminal.focus()")
            page.keyboard.press("n")
            page.wait_for_function(f"() => /paused +step 1 /.test(({SCREEN_TEXT})()) && "
                                   f"({SCREEN_TEXT})().includes('‖∂L/∂W‖')", timeout=10_000)
            after = page.evaluate(SCREEN_TEXT)
            assert "layer" in after
            assert any(ch in after for ch in "▁▂▃▄▅▆▇█")  # the sparklines

            # a second tab is a session of its own, at step 0
            other = browser.new_page(viewport={"width": 1280, "height": 800})
            other.route("**/*", lambda route: route.continue_()
                        if route.request.url.startswith(served) else route.abort())
            other.add_init_script(CATCH_TERMINAL)
            other.goto(served + "/", wait_until="domcontentloaded")
            other.wait_for_function(f"() => /paused +step 0/.test(({SCREEN_TEXT})())",
                                    timeout=15_000)
            other.close()

            # train a little (space), pause, and keep a picture of the sparklines
            page.bring_to_front()
            page.evaluate("() => window.__nnsimTerminal.focus()")
            page.keyboard.press(" ")
            page.wait_for_function(f"() => /step (\\d+)/.exec(({SCREEN_TEXT})())[1] >= 40",
                                   timeout=10_000)
            page.keyboard.press(" ")
            page.wait_for_function(f"() => /paused +step \\d+/.test(({SCREEN_TEXT})())",
                                   timeout=5_000)
            page.wait_for_timeout(300)  # let the canvas catch up with the buffer
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    try:
        shutil.copyfile(shot, SCREENSHOT_COPY)
    except OSError:
        pass

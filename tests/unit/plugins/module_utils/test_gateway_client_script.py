"""Run the real client script (sh + curl) against a local HTTP server that plays the Gateway.

The script runs in the agnhost image (alpine: busybox sh + curl) in the cluster; here it runs
under the local POSIX sh with the local curl, which is the same language and the same tool.
"""

import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.ai_conformance.rke2.plugins.module_utils import gateway as gw
from ansible_collections.ai_conformance.rke2.plugins.module_utils import testpods

HOST = "aic-ai-inference-x1.ai-conformance.test"

pytestmark = pytest.mark.skipif(not (shutil.which("curl") and shutil.which("sh")),
                                reason="needs sh and curl to run the client script")


class FakeGateway(BaseHTTPRequestHandler):
    mode = "ok"
    counter = 0
    server_host = None
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def _answer(self, code, body):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.headers.get("Host") == self.server_host and self.path == gw.REQUEST_PATH:
            # a control request straight to a backend Service (its own Host, not the route's)
            return self._answer(200, "aic-model-a-5f7d8-abcde")
        if self.mode == "notfound" or self.headers.get("Host") != HOST or self.path != gw.REQUEST_PATH:
            return self._answer(404, "404 page not found\n")
        with self.lock:
            FakeGateway.counter += 1
            n = FakeGateway.counter
        if self.headers.get(gw.HEADER_NAME) == gw.HEADER_VALUE:
            leak = self.mode == "leak" and n % 10 == 0
            return self._answer(200, "aic-model-a-5f7d8-abcde" if leak else "aic-model-b-6c9f4-vwxyz")
        if self.mode == "weird":
            return self._answer(200, 'somebody "else"\n{}')
        return self._answer(200, "aic-model-b-6c9f4-vwxyz" if n % 5 == 0 else "aic-model-a-5f7d8-abcde")


@pytest.fixture()
def server():
    FakeGateway.counter = 0
    srv = ThreadingHTTPServer(("127.0.0.1", 0), FakeGateway)
    FakeGateway.server_host = "127.0.0.1:%d" % srv.server_address[1]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def run_client(targets, requests=20, warmup=2, mode="ok", control=None, path=None):
    """Run the script; ``control`` replaces the backend Services of the control requests (no cluster DNS here)."""
    FakeGateway.mode = mode
    pod = gw.render_client_pod("client", "ns", testpods.PodBuilder(), targets, HOST, requests, {}, warmup_seconds=warmup,
                               request_timeout=2)
    container = pod["spec"]["containers"][0]
    env = dict(os.environ)
    env.update((e["name"], e["value"]) for e in container["env"])
    env["AIC_CONTROL_TARGETS"] = " ".join(control or targets[-1:])
    env["AIC_CONTROL_ATTEMPTS"] = "2"
    if path:
        env["PATH"] = path
    proc = subprocess.run(container["command"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return gw.parse_client_output(proc.stdout)


def test_client_finds_the_working_target_and_counts(server):
    port = server.server_address[1]
    out = run_client(["127.0.0.1:1", "127.0.0.1:%d" % port])
    assert out["done"] and out["problems"] == []
    warmup = out["phases"]["warmup"]
    assert warmup["ok"] is True and warmup["target"] == "127.0.0.1:%d" % port
    header, weighted = out["phases"]["header"], out["phases"]["weighted"]
    assert (header["total"], header["a"], header["b"], header["errors"]) == (20, 0, 20, 0)
    assert weighted["total"] == 20 and weighted["a"] + weighted["b"] == 20 and weighted["b"] == 4
    assert gw.evaluate_header_counts(header, 20)[0]
    assert gw.evaluate_weighted_counts(weighted, 20, [80, 20], 10)[0]


def test_client_reports_a_header_leak(server):
    out = run_client(["127.0.0.1:%d" % server.server_address[1]], mode="leak")
    header = out["phases"]["header"]
    assert header["a"] >= 1
    ok, message = gw.evaluate_header_counts(header, 20)
    assert not ok and "header routing leak" in message


def test_client_gives_up_after_the_warmup_deadline(server):
    out = run_client(["127.0.0.1:%d" % server.server_address[1]], warmup=1, mode="notfound")
    assert out["done"]
    warmup = out["phases"]["warmup"]
    assert warmup["ok"] is False and warmup["last_error"] == "http 404" and warmup["attempts"] >= 1
    assert "header" not in out["phases"]
    assert not gw.evaluate_warmup(warmup, ["x"])[0]


def test_client_sanitises_unexpected_answers_into_valid_json(server):
    FakeGateway.mode = "weird"
    out = run_client(["127.0.0.1:%d" % server.server_address[1]], mode="weird")
    # warmup never sees a backend name without the header; with mode weird it gives up
    assert out["problems"] == []
    assert out["phases"]["warmup"]["ok"] is False
    assert out["phases"]["warmup"]["other_sample"] == "somebody else"


def test_control_requests_come_first_and_pass_when_the_services_answer(server):
    out = run_client(["127.0.0.1:%d" % server.server_address[1]])
    control = out["phases"]["control"]
    assert control["ok"] is True and control["attempts"] == 1
    assert gw.evaluate_control(control) == (True, None, "control requests straight to the backend Services answered (127.0.0.1:%d)"
                                            % server.server_address[1])


def test_failed_control_stops_before_the_gateway_and_names_the_network(server):
    out = run_client(["127.0.0.1:%d" % server.server_address[1]], control=["127.0.0.1:1"])
    assert out["done"] and list(out["phases"]) == ["control"]
    control = out["phases"]["control"]
    assert control["ok"] is False and control["last_error"] == "curl exit 7" and control["attempts"] == 2
    ok, cause, message = gw.evaluate_control(control)
    assert (ok, cause) == (False, "network_policy") and "straight to 127.0.0.1:1" in message


def test_client_without_curl_is_a_tooling_problem(server, tmp_path):
    for tool in ("sh", "tr", "cut", "cat", "rm", "date", "sleep"):
        os.symlink(shutil.which(tool), str(tmp_path / tool))
    out = run_client(["127.0.0.1:%d" % server.server_address[1]], path=str(tmp_path))
    control = out["phases"]["control"]
    assert control["ok"] is False and control["last_error"] == "curl exit 127"
    assert gw.evaluate_control(control)[:2] == (False, "test_tooling")

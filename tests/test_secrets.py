"""Secrets never reach what a run leaves behind: the run directory (every file, Parquet and
worker logs included), the reports, the logs, the terminal. The Locust processes still send
them. The end-to-end test runs the real CLI against the local model server (127.0.0.1)."""

from __future__ import annotations

import http.server
import json
import os
import re
import secrets
import threading
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from recommender.cli import main
from recommender.errors import ConfigError, EndpointError, ExitCode
from recommender.loadgen.config import CONFIG_ENV, LoadgenConfig
from recommender.loadgen.payloads import Payloads
from recommender.loadgen.runner import LoadTestSpec, preflight, prepare
from recommender.options import CUSTOM_ATTRIBUTES_HEADER, RunOptions
from recommender.plan import Target, linear_ramp, parse_headers, parse_slo
from recommender.redact import fingerprint, redact_url, redacted, scrub, secret_values

REDACTED = re.compile(r"^<redacted sha256:[0-9a-f]{8}>$")


def test_fingerprint_is_short_stable_and_not_the_value() -> None:
    value = "Bearer " + secrets.token_hex(16)
    assert fingerprint(value) == fingerprint(value) != fingerprint(value + "x")
    assert re.fullmatch(r"sha256:[0-9a-f]{8}", fingerprint(value))
    assert REDACTED.match(redacted(value)) and value not in redacted(value)


def test_target_records_header_names_with_values_redacted() -> None:
    key = secrets.token_hex(12)
    target = Target(url=f"http://u:pw-{key}@127.0.0.1:8080/invocations?api_key={key}&n=1",
                    name="t", headers={"X-Api-Key": key, "Accept": "text/csv",
                                       "X-Amzn-SageMaker-Target-Variant": "Blue"})  # fmt: skip
    recorded = json.dumps(target.to_dict())
    assert key not in recorded and key not in target.shown_url
    d = target.to_dict()
    assert REDACTED.match(d["headers"]["X-Api-Key"])
    # Headers that say only how the payload is encoded or which variant serves it stay clear.
    assert d["headers"]["Accept"] == "text/csv"
    assert d["headers"]["X-Amzn-SageMaker-Target-Variant"] == "Blue"
    assert d["url"].endswith(f"/invocations?api_key={redacted(key)}&n=1")
    assert f"pw-{key}" in target.secrets() and key in target.secrets()
    assert redact_url("http://[::1") == "http://[::1"  # unreadable: nothing to find in it


def test_scrub_replaces_every_secret_in_text() -> None:
    found = secret_values({"Authorization": "Bearer abcdef", "Content-Type": "x"}, "")
    assert found == ["Bearer abcdef"]
    assert scrub("sent Bearer abcdef twice: Bearer abcdef", found).count("<redacted") == 2
    assert scrub("a 1 b", ["1"]) == "a 1 b"  # too short to search for


def test_a_bad_header_line_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_headers(["X-Ok: 1", "Authorization Bearer s3cr3t-token"])
    assert "s3cr3t" not in caught.value.one_line() and "#2" in caught.value.one_line()


def test_the_locust_process_gets_the_real_headers_in_its_environment(tmp_path: Path) -> None:
    options = RunOptions(url="http://127.0.0.1:9/invocations", header=("X-Api-Key: k-123456",),
                         custom_attributes="attr-123456")  # fmt: skip
    target = Target(url=options.url or "", name="t", headers=options.headers())
    spec = LoadTestSpec(target=target, plan=linear_ramp(10, 10, 1, 3, 1),
                        slo=parse_slo(["p95<=100ms"]))  # fmt: skip
    run = prepare(spec, Payloads((b"{}",), "application/json", "/p.jsonl"), tmp_path, 0.0)
    assert "k-123456" not in json.dumps(run.meta)
    env = run.config.to_env()
    os.environ.update(env)
    try:
        got = LoadgenConfig.from_env()
    finally:
        os.environ.pop(CONFIG_ENV, None)
    assert got is not None and CONFIG_ENV not in os.environ  # read once, then gone
    assert got.headers["X-Api-Key"] == "k-123456"
    assert got.headers[CUSTOM_ATTRIBUTES_HEADER] == "attr-123456"
    assert got.to_message([b"{}"])["headers"]["X-Api-Key"] == "k-123456"  # to workers, in memory


def _reanalyse(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """`analyze` and `report` (every format) on the run directory; what they printed."""
    printed_all = []
    for command in (["analyze"], ["report", "--format", "html,md,json"]):
        code = main([*command, str(run_dir)])
        printed = capsys.readouterr()
        assert code in FINISHED and "Error" not in printed.err, printed.err
        printed_all += [printed.out, printed.err]
    return printed_all


def _files_text(run_dir: Path) -> dict[Path, bytes]:
    """Every file of the run directory as bytes, Parquet files also as their decoded rows."""
    out = {}
    for path in sorted(run_dir.rglob("*")):
        if path.is_file():
            out[path] = path.read_bytes()
            if path.suffix == ".parquet":
                out[path] += pq.read_table(path).to_pandas().to_csv().encode()
    return out


# A run that measured: within the SLO or not (on a loaded machine the one 20 rps stage can
# miss p95<=300ms); the run directory is written alike.
FINISHED = (ExitCode.OK, ExitCode.FAILED, ExitCode.SLO_FAILED_AT_FIRST_STAGE)


def test_run_leaves_no_secret_anywhere(
    demo_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    token = "tok-" + secrets.token_hex(16)
    api_key = "key-" + secrets.token_hex(16)
    attributes = "attr-" + secrets.token_hex(16)
    aws = {"AWS_ACCESS_KEY_ID": "AKIA" + secrets.token_hex(8).upper(),
           "AWS_SECRET_ACCESS_KEY": secrets.token_hex(20),
           "AWS_SESSION_TOKEN": "sess-" + secrets.token_hex(24)}  # fmt: skip
    for name, value in {**aws, "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)  # the Locust processes inherit them
    out = tmp_path / "reports"
    code = main(["run", "--url", f"{demo_server}/invocations", "--header",
                 f"Authorization: Bearer {token}", "--header", f"X-Api-Key: {api_key}",
                 "--custom-attributes", attributes, "--workers", "1", "--keep-requests",
                 "--search", "fixed", "--start-rps", "20", "--max-rps", "20", "--stages", "1",
                 "--stage-seconds", "3", "--warmup-seconds", "1", "--slo", "p95<=300ms",
                 "--out", str(out), "--yes"])  # fmt: skip
    printed = capsys.readouterr()
    assert code in FINISHED, printed.err
    outputs = [printed.out, printed.err]
    (run_dir,) = list(out.iterdir())
    assert (run_dir / "run.json").is_file() and (run_dir / "locust-worker-0.log").is_file()
    assert list(run_dir.glob("requests-*.parquet")), "the worker kept its requests"
    # The endpoint got the real values (it keeps only their fingerprints).
    with urllib.request.urlopen(f"{demo_server}/stats", timeout=5) as r:
        seen = json.loads(r.read())["headers_seen"]
    assert seen.get(f"Authorization: {fingerprint('Bearer ' + token)}", 0) > 0, seen
    assert seen.get(f"X-Api-Key: {fingerprint(api_key)}", 0) > 0, seen
    assert seen.get(f"{CUSTOM_ATTRIBUTES_HEADER}: {fingerprint(attributes)}", 0) > 0, seen
    # A reader still sees which headers were sent.
    headers = json.loads((run_dir / "run.json").read_text())["target"]["headers"]
    assert set(headers) >= {"Authorization", "X-Api-Key", CUSTOM_ATTRIBUTES_HEADER}
    assert headers["X-Api-Key"] == redacted(api_key)
    assert all(REDACTED.match(headers[h]) for h in ("Authorization", CUSTOM_ATTRIBUTES_HEADER))
    # Re-analysing the run directory works, and leaves no secret either.
    outputs += _reanalyse(run_dir, capsys)
    files = _files_text(run_dir)
    assert {"run.json", "analysis.json", "report.md", "report.html", "locust.log"} <= {
        p.name for p in files
    }
    for secret in [token, api_key, attributes, *aws.values()]:
        for path, data in files.items():
            assert secret.encode() not in data, f"{secret[:4]}... in {path.name}"
        for text in outputs:
            assert secret not in text


class _EchoHeaders(http.server.BaseHTTPRequestHandler):
    """Answers 400 with the request's headers in the body, as some servers do."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = str(dict(self.headers)).encode()
        self.send_response(400)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        return


def test_an_endpoint_echoing_the_headers_does_not_put_them_on_the_terminal() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoHeaders)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        key = "key-" + secrets.token_hex(8)
        target = Target(url=f"http://127.0.0.1:{server.server_address[1]}/invocations",
                        name="t", headers={"X-Api-Key": key})  # fmt: skip
        with pytest.raises(EndpointError) as caught:
            preflight(target, b"{}", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    line = caught.value.one_line()
    assert "HTTP 400" in line and key not in line and redacted(key) in line


def test_a_url_s_password_and_credential_query_leave_no_trace(
    demo_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """README "What is redacted": in a --url, its password and the values of query
    parameters named like credentials. End to end: the real CLI against the local server,
    then analyze and report; none of the secrets is in any file of the run directory, nor
    on stdout or stderr. Each secret's random part is searched for, so a value written
    percent-encoded (the credential's slashes as %2F) is found too."""
    password, access_key = "pw-" + secrets.token_hex(16), "AKIA" + secrets.token_hex(8).upper()
    signature, token = secrets.token_hex(32), "tok-" + secrets.token_hex(16)
    credential = f"{access_key}/20260101/us-east-1/sagemaker/aws4_request"
    host = demo_server.removeprefix("http://")
    url = (f"http://alice:{password}@{host}/invocations?X-Amz-Algorithm=AWS4-HMAC-SHA256"
           f"&X-Amz-Credential={credential.replace('/', '%2F')}&X-Amz-Signature={signature}"
           f"&token={token}")  # fmt: skip
    out = tmp_path / "reports"
    code = main(["run", "--url", url, "--workers", "1", "--keep-requests", "--search", "fixed",
                 "--start-rps", "20", "--max-rps", "20", "--stages", "1", "--stage-seconds", "3",
                 "--warmup-seconds", "1", "--name", "urlsecrets", "--out", str(out),
                 "--yes"])  # fmt: skip
    printed = capsys.readouterr()
    assert code in FINISHED, printed.err
    outputs = [printed.out, printed.err]
    (run_dir,) = list(out.iterdir())
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["totals"]["successes"] > 0  # the load went through, credentials and all
    recorded = meta["target"]["url"]
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in recorded  # not a credential: kept
    assert recorded.startswith("http://alice:<redacted sha256:"), recorded
    outputs += _reanalyse(run_dir, capsys)
    files = _files_text(run_dir)
    assert {"run.json", "analysis.json", "report.md", "report.html", "locust.log",
            "locust-worker-0.log"} <= {p.name for p in files}  # fmt: skip
    for secret in (password, access_key, signature, token):
        for path, data in files.items():
            assert secret.encode() not in data, f"{secret[:4]}... in {path.name}"
        for text in outputs:
            assert secret not in text, f"{secret[:4]}... printed"

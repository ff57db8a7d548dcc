"""The sizing report: report.html (self-contained, checked in a real headless Chromium),
report.md, analysis.json's sizing, the policy commands and `recommender report`."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from recommender.cli import main
from recommender.pipeline import write_reports
from recommender.plan import RampPlan, Stage
from recommender.policy import PolicyRequest
from recommender.report.commands import PolicyCommands, format_policy_commands
from recommender.sizing import Traffic
from tests.conftest import synthetic_records, update_run_meta, write_run

CHROMIUM = Path("/usr/bin/chromium")
STARTED = "2026-01-01T00:00:30.000+00:00"
SECTIONS = ["verdict", "sizing", "curve", "rates", "timeline", "cloudwatch", "stages",
            "warnings", "apply", "facts"]  # fmt: skip
CLOUDWATCH_CSV = """metric,stat,timestamp,value,unit,period
ModelLatency,Average,2026-01-01T00:00:00+00:00,20000,Microseconds,60
OverheadLatency,Average,2026-01-01T00:00:00+00:00,3000,Microseconds,60
ModelLatency,Average,2026-01-01T00:01:00+00:00,25000,Microseconds,60
OverheadLatency,Average,2026-01-01T00:01:00+00:00,3500,Microseconds,60
Invocations,Sum,2026-01-01T00:00:00+00:00,1500,Count,60
"""


def make_run(
    path: Path, cloudwatch: str | None = CLOUDWATCH_CSV, cloudwatch_file: str = "cloudwatch.csv"
) -> Path:
    plan = RampPlan(tuple(Stage(r, 5) for r in (20, 40, 60, 80, 100)), warmup_seconds=1)
    records = synthetic_records(plan, [20, 30, 50, 90, 300], error_rate=[0, 0, 0, 0, 0.05])
    write_run(path, plan, records)
    update_run_meta(
        path,
        started_at=STARTED,
        ended_at="2026-01-01T00:00:55.000+00:00",
        tool={"name": "recommender", "version": "0.1.0"},
        target={"endpoint": "my-endpoint", "variant": "blue", "instance_type": "ml.c5.xlarge"},
    )
    if cloudwatch is not None:
        (path / cloudwatch_file).write_text(cloudwatch)
    return path


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = make_run(tmp_path_factory.mktemp("report") / "run")
    write_reports(run_dir, traffic=Traffic(peak_rps=500, min_rps=50))
    return run_dir


def test_html_has_every_section_in_order(report_dir: Path) -> None:
    html = (report_dir / "report.html").read_text()
    at = [html.index(f'<section id="{s}">') for s in SECTIONS]
    assert at == sorted(at)
    assert html.count("<svg") == 4  # curve, rates, timeline, cloudwatch
    verdict = html[at[0] : at[1]]
    assert ">2081<" in verdict  # 69.37 rps x 0.5 x 60
    assert "60.0 &ndash; 80.0" in verdict and "p95&lt;=100ms" in verdict
    assert "rps_per_instance x safety_factor x 60" in verdict


# Attributes whose value the browser resolves as a URL (HTML and SVG); srcset lists several.
URL_ATTRIBUTES = {"src", "href", "xlink:href", "data", "action", "formaction", "poster",
                  "background", "codebase", "cite", "longdesc", "manifest", "ping", "icon",
                  "archive", "classid", "usemap", "lowsrc", "dynsrc", "profile"}  # fmt: skip
CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)]*?))\s*\)""", re.IGNORECASE)
CSS_IMPORT = re.compile(r"""@import\s+(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
META_REFRESH_URL = re.compile(r"url\s*=\s*['\"]?([^'\"]*)", re.IGNORECASE)


def css_urls(css: str) -> list[str]:
    """Every url(...) and @import in a piece of CSS (a stylesheet, a style attribute, an SVG
    presentation attribute such as fill="url(#g)"); @font-face sources are url()s too."""
    css = CSS_COMMENT.sub("", css)
    found = [next(g for g in m.groups() if g is not None) for m in CSS_URL.finditer(css)]
    return found + [m.group(1) or m.group(2) for m in CSS_IMPORT.finditer(css)]


def is_local(url: str) -> bool:
    """A URL the browser resolves without fetching anything: a fragment or inline data."""
    url = url.strip()
    return url.startswith("#") or url[:5].lower() == "data:"


class _ExternalRefs(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): value or "" for name, value in attrs}
        if tag == "style":
            self._in_style = True
        if tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
            m = META_REFRESH_URL.search(values.get("content", ""))
            self.urls.append(m.group(1) if m else "meta refresh")
        if tag in ("script", "link", "iframe", "frame", "embed", "object", "base", "applet"):
            self.urls.append(f"<{tag}> {values}")
        for name, value in values.items():
            if name in URL_ATTRIBUTES:
                self.urls.append(value)
            elif name in ("srcset", "imagesrcset"):
                self.urls.extend(part.split()[0] for part in value.split(",") if part.strip())
            self.urls.extend(css_urls(value))  # style="", fill="url(...)", ...

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.urls.extend(css_urls(data))


def external_references(html: str) -> list[str]:
    """Everything in an HTML page that would make a browser fetch something: URLs in
    attributes and CSS that are not fragments or data: URLs, a meta refresh, and elements
    that load or embed other documents."""
    parser = _ExternalRefs()
    parser.feed(html)
    parser.close()
    return [u for u in parser.urls if not is_local(u)]


@pytest.mark.parametrize(
    "snippet",
    [
        '<img src="https://example.com/a.png">',
        '<div style="background: url(\'https://example.com/a.png\')"></div>',
        '<style>body { background: url("https://example.com/a.png") }</style>',
        "<style>body { background: url(//example.com/a.png) }</style>",
        "<style>body { background: URL( https://example.com/a.png ) }</style>",
        '<style>@font-face { font-family: f; src: local(f), url("fonts/f.woff2") '
        'format("woff2") }</style>',
        '<style>@import "https://example.com/x.css";</style>',
        "<style>@import url(x.css);</style>",
        '<object data="https://example.com/x.svg"></object>',
        '<meta http-equiv="refresh" content="0; url=https://example.com/">',
        '<meta http-equiv="Refresh" content="5">',
        '<a href="https://example.com/">x</a>',
        '<svg><image xlink:href="https://example.com/a.png"/></svg>',
        '<svg><use href="sprite.svg#icon"/></svg>',
        '<svg><rect fill="url(https://example.com/p.svg#g)"/></svg>',
        '<img srcset="data:image/png;base64,AA 1x, https://example.com/b.png 2x">',
        '<link rel="stylesheet" href="data:text/css,">',
        "<script>fetch('/x')</script>",
        '<iframe srcdoc="x"></iframe>',
        '<video poster="p.png"></video>',
        '<form action="https://example.com/"></form>',
    ],
)
def test_self_containment_check_rejects(snippet: str) -> None:
    page = f"<!doctype html><html><head></head><body>{snippet}</body></html>"
    assert external_references(page), snippet


def test_self_containment_check_accepts_fragments_and_data() -> None:
    page = (
        '<!doctype html><html><head><meta charset="utf-8"><style>'
        "/* url(https://example.com/commented-out) */ .a { background: url(data:image/png;"
        'base64,AA) } .b { clip-path: url("#c") }</style></head><body>'
        '<a href="#verdict">v</a><img src="data:image/png;base64,AA">'
        '<svg><use xlink:href="#p1"/><rect fill="url(#g)" clip-path="url(#c)"/></svg>'
        "</body></html>"
    )
    assert external_references(page) == []


def test_html_is_self_contained(report_dir: Path) -> None:
    html = (report_dir / "report.html").read_text()
    # Nothing the browser would fetch: no external script, stylesheet, image, font, frame,
    # object or redirect.
    assert external_references(html) == []


def test_html_commands_and_facts(report_dir: Path) -> None:
    html = (report_dir / "report.html").read_text()
    assert "--resource-id endpoint/my-endpoint/variant/blue" in html
    assert "--min-capacity 2" in html and "--max-capacity 23" in html
    assert "file://target_tracking_scaling_policy.json" in html
    assert "my-endpoint (variant blue)" in html and "1 x ml.c5.xlarge" in html
    assert "5 stages, 20 -&gt; 100 requests/s offered" in html
    assert "1500 sent, 1475 succeeded, 25 failed" in html


def test_cloudwatch_section_compares_latency(report_dir: Path) -> None:
    html = (report_dir / "report.html").read_text()
    section = html[html.index('<section id="cloudwatch">') : html.index('<section id="stages">')]
    # The run (00:00:30 to 00:00:55) lies in the first minute only: one row.
    assert section.count("<tr><td>2026-01-01 00:00:00</td>") == 1
    assert "00:01:00" not in section.split("</svg>")[-1]
    assert "<td>20.0</td>" in section and "<td>3.0</td>" in section


def test_cloudwatch_compares_at_the_slo_s_own_percentile_when_it_has_it(tmp_path: Path) -> None:
    # The SLO is p95: with CloudWatch's p95 beside the Average, the section compares p95s.
    p95 = CLOUDWATCH_CSV + ("ModelLatency,p95,2026-01-01T00:00:00+00:00,41000,Microseconds,60\n"
                            "OverheadLatency,p95,2026-01-01T00:00:00+00:00,4000,Microseconds,60\n")
    run_dir = make_run(tmp_path / "run", cloudwatch=p95)
    write_reports(run_dir)
    html = (run_dir / "report.html").read_text()
    section = html[html.index('<section id="cloudwatch">') : html.index('<section id="stages">')]
    assert "statistic p95" in section and "<td>41.0</td>" in section and "<td>4.0</td>" in section


def test_no_cloudwatch_file_no_section(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "run", cloudwatch=None)
    write_reports(run_dir, formats=["html"])
    html = (run_dir / "report.html").read_text()
    assert 'id="cloudwatch"' not in html and html.count("<svg") == 3
    assert not (run_dir / "report.md").exists() and not (run_dir / "analysis.json").exists()


@pytest.mark.parametrize(
    ("csv", "note"),
    [
        ("not,a,cloudwatch\nfile\n", "no ModelLatency or OverheadLatency rows"),
        ("metric,stat,timestamp,value,unit\nModelLatency,Average,yesterday,1,Microseconds\n",
         "no ModelLatency or OverheadLatency rows"),
        ("metric,stat,timestamp,value,unit\nModelLatency,Average,2020-01-01T00:00:00Z,1,"
         "Microseconds\n", "no CloudWatch period overlaps the run"),
    ],
)  # fmt: skip
def test_unreadable_cloudwatch_is_tolerated(tmp_path: Path, csv: str, note: str) -> None:
    # Any *cloudwatch*.csv counts (here not the collector's own cloudwatch.csv, which the
    # analysis reads too).
    run_dir = make_run(tmp_path / "run", cloudwatch=csv, cloudwatch_file="old-cloudwatch.csv")
    write_reports(run_dir, formats=["html"])
    html = (run_dir / "report.html").read_text()
    assert f"Nothing to compare in <code>old-cloudwatch.csv</code>: {note}." in html
    assert html.count("<svg") == 3


def test_markdown_has_verdict_sizing_table_and_commands(report_dir: Path) -> None:
    md = (report_dir / "report.md").read_text()
    assert md.startswith(
        "# Sizing report: synthetic\n\n## Verdict\n\n**Recommended target value: 2081"
    )
    assert "| MinCapacity | 2 (at least 2 for availability across zones" in md
    assert "| MaxCapacity | 23 (instances at peak x 1.5, rounded up) |" in md
    assert "| Instances at peak | 15 (ceil(500 x 60 / 2081.1)) |" in md
    assert "| Cost at peak | $3.06/hour |" in md
    assert "```sh\naws application-autoscaling register-scalable-target \\\n" in md
    assert "- Endpoint: my-endpoint (variant blue)" in md


def test_analysis_json_has_sizing_only_with_traffic(report_dir: Path, tmp_path: Path) -> None:
    sizing = json.loads((report_dir / "analysis.json").read_text())["sizing"]
    assert sizing["instances_at_peak"] == 15 and sizing["min_capacity"] == 2
    assert sizing["max_capacity"] == 23 and sizing["price"]["usd_per_hour"] == 0.204
    run_dir = make_run(tmp_path / "run", cloudwatch=None)
    write_reports(run_dir, formats=["json"])
    assert "sizing" not in json.loads((run_dir / "analysis.json").read_text())


def test_policy_commands_exact() -> None:
    request = PolicyRequest(endpoint="my-endpoint", variant="AllTraffic", target_value=5621.94,
                            min_capacity=2, max_capacity=6)  # fmt: skip
    p = PolicyCommands(request=request, sized=True)
    assert format_policy_commands(p) == """\
aws application-autoscaling register-scalable-target \\
  --service-namespace sagemaker \\
  --resource-id endpoint/my-endpoint/variant/AllTraffic \\
  --scalable-dimension sagemaker:variant:DesiredInstanceCount \\
  --min-capacity 2 \\
  --max-capacity 6

cat > target_tracking_scaling_policy.json <<'EOF'
{
  "TargetValue": 5621.9,
  "PredefinedMetricSpecification": {
    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
  },
  "ScaleInCooldown": 300,
  "ScaleOutCooldown": 300,
  "DisableScaleIn": false
}
EOF

aws application-autoscaling put-scaling-policy \\
  --policy-name SageMakerEndpointInvocationScalingPolicy \\
  --service-namespace sagemaker \\
  --resource-id endpoint/my-endpoint/variant/AllTraffic \\
  --scalable-dimension sagemaker:variant:DesiredInstanceCount \\
  --policy-type TargetTrackingScaling \\
  --target-tracking-scaling-policy-configuration file://target_tracking_scaling_policy.json
"""


def test_report_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "run", cloudwatch=None)
    code = main(["report", str(run_dir), "--format", "md", "--peak-rps", "100",
                 "--instance-price", "1.5", "--min-capacity-floor", "1"])  # fmt: skip
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert out == (
        "Recommended target value: 2081 (SageMakerVariantInvocationsPerInstance)\n"
        "Sizing: 3 instance(s) at 100 rps; MinCapacity 1, MaxCapacity 5\n"
        f"Wrote {run_dir / 'report.md'}\n"
    )
    md = (run_dir / "report.md").read_text()
    assert "--min-capacity 1 \\\n  --max-capacity 5\n" in md
    assert "| Cost at peak | $4.50/hour |" in md
    assert not (run_dir / "report.html").exists()


def test_report_without_traffic_uses_placeholder_capacity(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "run", cloudwatch=None)
    write_reports(run_dir, formats=["md"])
    md = (run_dir / "report.md").read_text()
    assert "## Sizing" not in md
    assert "MinCapacity 2 and MaxCapacity 3 are placeholders" in md


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "pdf"], "Error: unknown --format 'pdf' (use html, md and/or json)"),
        (["--min-rps", "5"], "Error: --min-rps needs --peak-rps (pass the expected peak rate)"),
        (["--peak-rps", "-1"],
         "Error: --peak-rps must be > 0 (got -1) (the expected peak, requests/s)"),
    ],
)
def test_report_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    run_dir = make_run(tmp_path / "run", cloudwatch=None)
    code = main(["report", str(run_dir), *argv])
    _, err = capsys.readouterr()
    assert code == 2 and err == message + "\n"


# --- in a real browser -------------------------------------------------------------------


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (`make test` installs Debian's chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    return CHROMIUM


def test_report_opens_in_chromium(report_dir: Path, tmp_path: Path, chromium: Path) -> None:
    from playwright.sync_api import sync_playwright

    url = (report_dir / "report.html").resolve().as_uri()
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh profile: nothing cached, nothing synced
            executable_path=str(chromium),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"],
        )  # fmt: skip
        try:
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url, wait_until="load")
            page.wait_for_load_state("networkidle")
            sizes = page.eval_on_selector_all(
                "figure.plot svg",
                "els => els.map(e => [e.closest('figure').dataset.plot,"
                " e.getBoundingClientRect().width, e.getBoundingClientRect().height])",
            )
            title = page.title()
        finally:
            context.close()
    assert errors == []
    assert requests == [url]  # the page itself, nothing else
    assert title == "Sizing report: synthetic"
    assert [s[0] for s in sizes] == ["curve", "rates", "timeline", "cloudwatch"]
    for name, width, height in sizes:
        assert width > 100 and height > 100, (name, width, height)



def test_report_without_recommendation(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    plan = RampPlan((Stage(50, 4), Stage(100, 4)), warmup_seconds=1)
    run_dir = write_run(tmp_path / "run", plan, synthetic_records(plan, [300, 400]))
    code = main(["report", str(run_dir), "--peak-rps", "100"])
    out, _ = capsys.readouterr()
    assert code == 3  # every stage failed the SLO
    assert out.startswith("No recommendation: no stage passed the SLO.\n"
                          "No sizing: there is no target value to size with.\n")  # fmt: skip
    html = (run_dir / "report.html").read_text()
    assert "No policy: there is no recommendation to apply." in html
    assert "first_stage_failed" in html and html.count("<svg") == 3


def test_report_of_a_run_with_no_data(tmp_path: Path) -> None:
    plan = RampPlan((Stage(50, 4),), warmup_seconds=1)
    run_dir = write_run(tmp_path / "run", plan, [], status="interrupted")
    write_reports(run_dir)
    html = (run_dir / "report.html").read_text()
    assert "<svg" not in html and "No stage has measured seconds" in html

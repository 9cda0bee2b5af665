"""Headless Chromium, driven from the command line (no DevTools client, no JS libraries).

``check_page`` loads a page with a small error trap inserted before the page's own
Content-Security-Policy (so the policy still governs everything the page does): it records
script errors, failed resource loads and CSP violations into an attribute that
``--dump-dom`` prints; Chromium's own console log (``--enable-logging=stderr``) is read too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]

TRAP = """<script>
window.__errors = [];
addEventListener('error', function (e) {
  var t = e.target;
  __errors.push(t && t !== window ? 'load failed: ' + (t.src || t.href || t.tagName)
                                  : 'error: ' + e.message);
}, true);
addEventListener('securitypolicyviolation', function (e) {
  __errors.push('csp: ' + e.violatedDirective + ' ' + e.blockedURI);
});
addEventListener('load', function () {
  document.documentElement.setAttribute('data-page-errors', JSON.stringify(__errors));
});
</script>"""


def chromium() -> str:
    """The Chromium binary; without one the test skips, unless CI requires it."""
    for name in (os.environ.get("BIA_ACQ_CHROMIUM"), "chromium", "chromium-browser"):
        if name and shutil.which(name):
            return str(shutil.which(name))
    if os.environ.get("BIA_ACQ_REQUIRE_BROWSER"):
        pytest.fail("chromium is not installed (apt-get install -y chromium); CI requires it")
    pytest.skip("chromium is not installed (apt-get install -y chromium)")


def _run(args: list[str], url: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="bia-acq-chromium-") as profile:
        return subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *args, url],
            capture_output=True,
            text=True,
            timeout=90,
        )


def check_page(page: Path) -> list[str]:
    """Everything that went wrong loading ``page`` (empty: loaded cleanly)."""
    html = page.read_text(encoding="utf-8")
    trapped = page.with_name(page.stem + ".trap.html")
    trapped.write_text(html.replace("<head>", "<head>" + TRAP, 1), encoding="utf-8")
    proc = _run(["--enable-logging=stderr", "--v=0", "--dump-dom"], trapped.as_uri())
    m = re.search(r'data-page-errors="([^"]*)"', proc.stdout)
    if m is None:
        return [f"page did not finish loading (chromium exit {proc.returncode})"]
    errors: list[str] = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    errors += [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return errors


def screenshot(page: Path, out: Path, size: str = "1000,1600") -> Path:
    proc = _run([f"--window-size={size}", f"--screenshot={out}"], page.as_uri())
    assert out.exists(), proc.stderr[-2000:]
    return out


def print_pdf(page: Path, out: Path) -> bytes:
    proc = _run(["--no-pdf-header-footer", f"--print-to-pdf={out}"], page.as_uri())
    assert out.exists(), proc.stderr[-2000:]
    return out.read_bytes()

"""`sailctl analyze` never refuses input: what cannot be read is a message with file:line
(IST0106, as istioctl reports schema errors) and everything else is analyzed."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sailmesh.cli.analyze_cmd import analyze

UNPARSABLE = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: broken, namespace: test}
spec:
  selector: {istio: ingressgateway
  servers: []
"""
SCHEMA_INVALID = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: vs
  namespace: test
spec:
  hosts: [a.example.com]
  http:
  - route:
    - {}
    - destination: {host: nope}
      weight: heavy
"""
GOOD = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: good-Gateway
  namespace: test
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: SIMPLE, credentialName: missing-cred}
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SAILMESH_HOME", str(tmp_path / "state"))
    return tmp_path


def invoke(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(analyze, list(args), input=stdin)


def broken_dir(home: Path) -> Path:
    d = home / "in"
    d.mkdir()
    (d / "a-unparsable.yaml").write_text(UNPARSABLE)
    (d / "b-schema.yaml").write_text(SCHEMA_INVALID)
    (d / "c-good.yaml").write_text(GOOD)
    return d


def test_broken_directory_reports_the_broken_and_analyzes_the_rest(home: Path) -> None:
    d = broken_dir(home)
    result = invoke("-f", str(d))
    lines = result.output.splitlines()
    assert result.exit_code == 1
    # The unparsable file: a message with its file and line, no resource.
    assert any(x.startswith(f"Error [IST0106] ({d}/a-unparsable.yaml:6) invalid YAML")
               for x in lines), result.output
    # The schema-invalid object: one message per bad field, each at its own line ...
    assert any(x.startswith(f"Error [IST0106] (VirtualService test/vs {d}/b-schema.yaml:10) "
                            "spec.http[0].route[0].destination: missing required field")
               for x in lines), result.output
    assert any(x.startswith(f"Error [IST0106] (VirtualService test/vs {d}/b-schema.yaml:12) "
                            "spec.http[0].route[1].weight: expected integer")
               for x in lines), result.output
    # ... and the rest of it is analyzed: its remaining route names an unknown host.
    assert any(x.startswith("Error [IST0101] (VirtualService test/vs ") and "host nope" in x
               for x in lines), result.output
    # A name Kubernetes refuses is reported, and the Gateway is analyzed all the same.
    assert any(x.startswith(f"Error [IST0106] (Gateway test/good-Gateway {d}/c-good.yaml:4) "
                            "metadata.name: Invalid value") for x in lines), result.output
    assert any(x.startswith(f"Error [IST0101] (Gateway test/good-Gateway {d}/c-good.yaml:11) "
                            "spec.servers[0].tls.credentialName") for x in lines), result.output


def test_exit_status_follows_the_failure_threshold(home: Path) -> None:
    d = broken_dir(home)
    errors_hidden = ("-S", "IST0106=*", "-S", "IST0101=*")  # leaves an Info (SM0106)
    assert invoke("-f", str(d), *errors_hidden).exit_code == 0
    assert invoke("-f", str(d), *errors_hidden, "--failure-threshold", "Info").exit_code == 1
    assert invoke("-f", str(d), "--failure-threshold", "Error").exit_code == 1


def test_stdin_with_a_yaml_error_fails_with_its_line(home: Path) -> None:
    result = invoke("-f", "-", stdin="apiVersion: v1\nkind: [Secret\n")
    assert result.exit_code == 1
    assert result.output.startswith("Error [IST0106] (STDIN:3) invalid YAML"), result.output


def _serial_zero_pair(tmp: Path) -> tuple[bytes, bytes]:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                    "-set_serial", "0", "-subj", "/CN=httpbin.example.com",
                    "-keyout", str(tmp / "k.pem"), "-out", str(tmp / "c.pem")],
                   check=True, capture_output=True)
    return (tmp / "c.pem").read_bytes(), (tmp / "k.pem").read_bytes()


def test_serial_zero_certificates_print_no_library_warnings(home: Path) -> None:
    """The tutorials' `openssl -set_serial 0` certificates: analyze and proxy-config secret
    print their own output only (run as the user runs them: a fresh interpreter, default
    warning filters)."""
    cert, key = _serial_zero_pair(home)
    secret = (f"apiVersion: v1\nkind: Secret\nmetadata: {{name: httpbin-credential, namespace: "
              f"istio-system}}\ntype: kubernetes.io/tls\ndata:\n"
              f"  tls.crt: {base64.b64encode(cert).decode()}\n"
              f"  tls.key: {base64.b64encode(key).decode()}\n")
    (home / "s.yaml").write_text(secret + "---\n" + GOOD.replace("missing-cred",
                                                                 "httpbin-credential"))
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    sailctl = Path(sys.executable).with_name("sailctl")
    run = subprocess.run([str(sailctl), "analyze", "-f", str(home / "s.yaml")], env=env,
                         capture_output=True, text=True)
    assert "IST0101" not in run.stdout and run.stderr == "", run.stdout + run.stderr
    dump = {"secrets": {"dynamic_active_secrets": [{"name": "kubernetes://httpbin-credential",
            "secret": {"tls_certificate": {"certificate_chain": {
                "inline_bytes": base64.b64encode(cert).decode()}}}}]}}
    code = ("import json, sys\nfrom sailmesh.cli.proxy_config import secret_rows\n"
            "print(secret_rows(json.loads(sys.stdin.read())))")
    rows = subprocess.run([sys.executable, "-c", code], input=json.dumps(dump), env=env,
                          capture_output=True, text=True)
    assert rows.returncode == 0 and rows.stderr == "", rows.stderr
    assert "'0'" in rows.stdout  # the serial is shown, as istioctl shows it

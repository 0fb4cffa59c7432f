"""`sailctl analyze` end to end through click: store in a temp SAILMESH_HOME, files on top."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sailmesh.cli.analyze_cmd import analyze
from sailmesh.resources.loader import load_text
from sailmesh.store import Store
from tests.analysis.manifests import BASE, OPERATOR, gateway, server, text, tls_secret


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SAILMESH_HOME", str(tmp_path))
    return tmp_path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(analyze, list(args))


def write(path: Path, *docs: dict) -> str:
    path.write_text(text(*docs))
    return str(path)


def _line_of(path: str, fragment: str) -> int:
    lines = Path(path).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.strip() == fragment)


def test_clean_files_offline(home: Path) -> None:
    result = invoke("-f", write(home / "in.yaml", *BASE))
    assert result.exit_code == 0, result.output
    assert result.output == ("\u2714 No validation issues found when analyzing namespaces: "
                             "istio-system, test.\n")
    only_test = invoke("-n", "test", "-f", write(home / "in.yaml", *BASE))
    assert only_test.output == "\u2714 No validation issues found when analyzing namespace: test.\n"


def test_error_sets_exit_status(home: Path) -> None:
    bad = gateway("gw", server(mode="SIMPLE", credentialName="c"))
    docs = [*BASE[:3], tls_secret("c", "test"), bad, BASE[4]]
    path = write(home / "in.yaml", *docs)
    line = _line_of(path, "credentialName: c")
    result = invoke("-f", path)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error [IST0101] (Gateway test/gw {path}:{line}) "
                                    "spec.servers[0].tls.credentialName: credentialName c: "
                                    "Secret istio-system/c not found")
    assert "Fix: create the Secret" in result.output


def test_files_layer_over_the_store(home: Path) -> None:
    Store(home).apply([r for r in load_text(text(*BASE)).resources if r.kind != "Secret"])
    stored_only = invoke("-n", "test")
    assert stored_only.exit_code == 1 and "[SM0101]" in stored_only.output
    assert not list((home / "resources").glob("Secret/*/*.yaml"))
    with_file = invoke("-n", "test", "-f", write(home / "s.yaml", BASE[2]))
    assert with_file.exit_code == 0, with_file.output
    assert not list((home / "resources").glob("Secret/*/*.yaml"))  # analyzed, never stored


def test_default_namespace_and_all_namespaces(home: Path) -> None:
    Store(home).apply(load_text(text(*BASE, OPERATOR)).resources)
    assert invoke().output == ("\u2714 No validation issues found when analyzing namespace: "
                               "default.\n")
    everywhere = invoke("-A")
    assert everywhere.exit_code == 0
    assert everywhere.output.startswith("Info [SM0112] (IstioOperator istio-system/installed-state)")


def test_json_output_and_now(home: Path) -> None:
    path = write(home / "in.yaml", *BASE)
    result = invoke("-f", path, "-o", "json", "--now", "2020-01-01T00:00:00Z")
    assert result.exit_code == 1
    [message] = json.loads(result.output)
    assert message["code"] == "IST0161" and message["sailmeshCode"] == "SM0104"
    assert message["resource"] == "Gateway test/gw" and message["origin"] == (
        f"{path}:{_line_of(path, 'credentialName: httpbin-cred')}")
    assert message["level"] == "Error" and message["pitfall"] == "#10"


def test_bad_input(home: Path) -> None:
    assert invoke("--now", "yesterday").exit_code == 2
    result = invoke("-f", write(home / "bad.yaml", {"kind": "Gateway"}))
    assert result.exit_code == 1 and "apiVersion not set" in result.output


def test_suppress_by_istio_or_sailmesh_code_and_glob(home: Path) -> None:
    bad = gateway("gw", server(mode="SIMPLE", credentialName="c"))
    path = write(home / "in.yaml", *BASE[:3], tls_secret("c", "test"), bad, BASE[4])
    for rule in ("IST0101=Gateway test/*", "SM0101=Gateway test/gw", "*=*"):
        result = invoke("-f", path, "--suppress", rule)
        assert result.exit_code == 0, (rule, result.output)
        assert "[IST0101]" not in result.output
    kept = invoke("-f", path, "--suppress", "IST0101=Gateway other/*")
    assert kept.exit_code == 1 and "[IST0101]" in kept.output
    assert invoke("-f", path, "--suppress", "IST0101").exit_code == 2


def test_thresholds(home: Path) -> None:
    warn = gateway("gw", server(mode="SIMPLE", credentialName="httpbin-cred",
                                minProtocolVersion="TLSV1_1"))  # SM0111
    path = write(home / "in.yaml", *BASE[:3], warn, BASE[4])
    assert invoke("-f", path).exit_code == 0
    failing = invoke("-f", path, "--failure-threshold", "Warning")
    assert failing.exit_code == 1 and "Warning [SM0111]" in failing.output
    quiet = invoke("-f", path, "--output-threshold", "Error")
    assert "[SM0111]" not in quiet.output


def test_any_kubernetes_kind_is_read_and_pods_count(home: Path) -> None:
    """Unknown kinds are skipped; a Pod's labels select it and say whether it is injected."""
    from tests.analysis.manifests import dest_rule, namespace, service
    nested = home / "dir" / "sub"
    nested.mkdir(parents=True)
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "httpbin-abc", "namespace": "test", "labels": {"app": "httpbin"}},
           "spec": {"nodeName": "n1", "containers": [{"name": "httpbin", "image": "x",
                                                     "ports": [{"containerPort": 8080}]}]}}
    other = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
             "metadata": {"name": "pdb", "namespace": "test"}, "spec": {"minAvailable": 1}}
    write(nested / "a.yaml", namespace("test", injected=False), pod, other, service("httpbin"))
    write(home / "dir" / "dr.yaml", dest_rule("httpbin", "httpbin", mode="ISTIO_MUTUAL"))
    result = invoke("-f", str(home / "dir"))
    assert result.exit_code == 1, result.output
    assert "Error [SM0118] (DestinationRule test/httpbin " in result.output
    assert "Pod test/httpbin-abc has no sidecar" in result.output
    assert f"{home / 'dir' / 'dr.yaml'}:" in result.output

"""The loader end to end: text in, resources or a ResourceError naming file:line, object, field.

Two data sets: every manifest of the seeds must load cleanly; every file under
bad_inputs/ must be rejected (or warned about) with exactly the listed message fragments.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from sailmesh.resources.core import ConfigMap, Secret, Service
from sailmesh.resources.errors import Problem, ResourceError
from sailmesh.resources.loader import LoadResult, load_object, load_paths, load_text
from sailmesh.resources.networking import Gateway

HERE = Path(__file__).parent
BAD = HERE / "bad_inputs"
SEEDS = HERE / "seed_manifests"

# file, --namespace, expected fragments (each must appear in one problem line).
# Warning-only inputs load, and their fragments must appear among the warnings.
BAD_CASES: list[tuple[str, str | None, list[str]]] = [
    (
        "01-unknown-kind.yaml",
        "test",
        [
            '01-unknown-kind.yaml:2: Gatway test/sni-gateway: kind: no matches for kind "Gatway"'
            ' in version "networking.istio.io/v1beta1"; did you mean "Gateway"?',
        ],
    ),
    (
        "02-wrong-apiversion.yaml",
        "test",
        [
            "02-wrong-apiversion.yaml:1: Gateway test/sni-gateway: apiVersion: no matches for kind"
            ' "Gateway" in version "networking.istio.io/v2"; accepted apiVersions:'
            " networking.istio.io/v1alpha3, networking.istio.io/v1beta1, networking.istio.io/v1",
        ],
    ),
    (
        "03-missing-name.yaml",
        "test",
        [
            "03-missing-name.yaml:3: Service: metadata.name: resource name may not be empty",
        ],
    ),
    (
        "04-bad-name.yaml",
        "test",
        [
            "04-bad-name.yaml:4: Deployment test/Httpbin_V1: metadata.name: Invalid value:"
            ' "Httpbin_V1": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric'
            " characters, '-' or '.'",
        ],
    ),
    (
        "05-unknown-field.yaml",
        "test",
        [
            "05-unknown-field.yaml:15: Gateway test/sni-gateway: spec.servers[0].tls.credentialname:"
            ' unknown field "credentialname"; did you mean "credentialName"?',
        ],
    ),
    (
        "06-wrong-type.yaml",
        "test",
        [
            "06-wrong-type.yaml:10: Gateway test/sni-gateway: spec.servers[0].port.number:"
            ' expected integer, got string "abc"',
        ],
    ),
    (
        "07-missing-service-port.yaml",
        "test",
        [
            "07-missing-service-port.yaml:7: Service test/helloworld: spec.ports[0].port:"
            ' missing required field "port"',
        ],
    ),
    (
        "08-tls-mode-typo.yaml",
        "test",
        [
            "08-tls-mode-typo.yaml:14: Gateway test/sni-gateway: spec.servers[0].tls.mode:"
            ' unknown value "SIMPEL"; did you mean "SIMPLE"?',
        ],
    ),
    (
        "09-https-without-tls.yaml",
        "test",
        [
            "09-https-without-tls.yaml:9: Gateway test/sni-gateway: spec.servers[0]:"
            " server must have TLS settings for HTTPS/TLS protocols",
        ],
    ),
    (
        "10-simple-without-credential.yaml",
        "test",
        [
            "10-simple-without-credential.yaml:13: Gateway test/sni-gateway: spec.servers[0].tls:"
            " SIMPLE TLS requires credentialName, or serverCertificate and privateKey",
        ],
    ),
    (
        "11-partial-wildcard-host.yaml",
        "test",
        [
            "11-partial-wildcard-host.yaml:15: Gateway test/sni-gateway: spec.servers[0].hosts[1]:"
            ' invalid host "foo*.example.com": a wildcard must be the whole first label',
        ],
    ),
    (
        "12-istio-mutual-with-credential.yaml",
        "test",
        [
            "12-istio-mutual-with-credential.yaml:15: Gateway test/mesh-gateway:"
            " spec.servers[0].tls.credentialName: ISTIO_MUTUAL TLS cannot have associated"
            " credentialName",
        ],
    ),
    (
        "13-two-credential-sources.yaml",
        "test",
        [
            "13-two-credential-sources.yaml:13: Gateway test/sni-gateway: spec.servers[0].tls:"
            " only one of credentialName, credentialNames, serverCertificate/privateKey,"
            " tlsCertificates may be set; found credentialName and serverCertificate/privateKey",
        ],
    ),
    (
        "14-uri-two-match-kinds.yaml",
        "test",
        [
            "14-uri-two-match-kinds.yaml:12: VirtualService test/helloworld:"
            " spec.http[0].match[0].uri: only one of exact, prefix or regex may be set,"
            " got exact and prefix",
        ],
    ),
    (
        "15-namespace-mismatch.yaml",
        "b",
        [
            "15-namespace-mismatch.yaml:5: ConfigMap a/nginx-config: metadata.namespace:"
            ' the namespace from the provided object "a" does not match the namespace "b".'
            " You must pass '--namespace=a' to perform this operation.",
        ],
    ),
    (
        "16-duplicate-object.yaml",
        "test",
        [
            "16-duplicate-object.yaml:13: Service test/httpbin: metadata.name: duplicate object"
            " Service test/httpbin: also defined at 16-duplicate-object.yaml:4",
        ],
    ),
    (
        "17-broken-yaml.yaml",
        "test",
        [
            "17-broken-yaml.yaml:9: invalid YAML: expected <block end>",
        ],
    ),
    (
        "18-non-mapping-document.yaml",
        "test",
        [
            "18-non-mapping-document.yaml:6: expected an object (apiVersion, kind, metadata, ...),"
            " got a list",
        ],
    ),
    (
        "19-list-with-bad-item.yaml",
        "test",
        [
            "19-list-with-bad-item.yaml:13: Service test/httpbin: items[1].spec.prots:"
            ' unknown field "prots"; did you mean "ports"?',
        ],
    ),
    (
        "20-secret-bad-base64.yaml",
        None,
        [
            "20-secret-bad-base64.yaml:9: Secret istio-system/httpbin-secret: data[tls.key]:"
            " illegal base64 data at input byte 0",
        ],
    ),
    (
        "21-selector-mismatch.yaml",
        "test",
        [
            "21-selector-mismatch.yaml:12: Deployment test/httpbin: spec.template.metadata.labels:"
            " Invalid value: {app: httpbin}: `selector` does not match template `labels`",
        ],
    ),
    (
        "22-cross-namespace-credential.yaml",
        "test",
        [
            "22-cross-namespace-credential.yaml:15: Gateway test/sni-gateway:"
            ' spec.servers[0].tls.credentialName: credentialName "test/httpbin-secret" names'
            " another namespace: Istio refuses cross-namespace credentials for gateways",
            "put the Secret in the gateway workload's namespace (istio-system)",
        ],
    ),
    (
        "23-tls-credential-without-mode.yaml",
        "test",
        [
            "23-tls-credential-without-mode.yaml:13: warning: Gateway test/tls-gateway:"
            " spec.servers[0].tls.mode: mode is not set, so it defaults to PASSTHROUGH and"
            " credentialName will be ignored",
        ],
    ),
    (
        "24-old-tls-without-ciphers.yaml",
        "test",
        [
            "24-old-tls-without-ciphers.yaml:16: warning: Gateway test/legacy-gateway:"
            " spec.servers[0].tls.minProtocolVersion: TLSV1_0 has no effect without cipherSuites",
        ],
    ),
    (
        "25-dr-istio-mutual-with-cert.yaml",
        "test",
        [
            "25-dr-istio-mutual-with-cert.yaml:10: DestinationRule test/httpbin:"
            " spec.trafficPolicy.tls.clientCertificate: ISTIO_MUTUAL TLS cannot have associated"
            " clientCertificate",
        ],
    ),
    (
        "26-pa-port-level-without-selector.yaml",
        "test",
        [
            "26-pa-port-level-without-selector.yaml:8: PeerAuthentication test/default:"
            " spec.portLevelMtls: portLevelMtls requires a workload selector",
        ],
    ),
    (
        "27-weights-not-100.yaml",
        "test",
        [
            "27-weights-not-100.yaml:9: VirtualService test/helloworld: spec.http[0].route:"
            " total destination weight 120 != 100",
        ],
    ),
    (
        "28-duplicate-yaml-key.yaml",
        "test",
        [
            '28-duplicate-yaml-key.yaml:5: mapping key "name" already defined at line 4',
        ],
    ),
    (
        "29-tls-route-without-sni.yaml",
        "test",
        [
            "29-tls-route-without-sni.yaml:12: VirtualService test/paasthrough-httpbin:"
            ' spec.tls[0].match[0].sniHosts: missing required field "sniHosts"',
        ],
    ),
    (
        "30-mutual-files-without-ca.yaml",
        "test",
        [
            "30-mutual-files-without-ca.yaml:13: Gateway test/manual-gateway:"
            " spec.servers[0].tls.caCertificates: MUTUAL TLS requires a client CA bundle",
        ],
    ),
]


def _load(name: str, namespace: str | None) -> LoadResult:
    return load_text((BAD / name).read_text(), name, namespace)


def test_every_bad_input_is_in_the_table() -> None:
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted(c[0] for c in BAD_CASES)
    assert len(BAD_CASES) >= 20


@pytest.mark.parametrize(("name", "namespace", "fragments"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_input(name: str, namespace: str | None, fragments: list[str]) -> None:
    if "warning:" in fragments[0]:
        result = _load(name, namespace)
        problems: list[Problem] = list(result.warnings)
        assert result.resources, "a warning must not drop the resource"
    else:
        with pytest.raises(ResourceError) as info:
            _load(name, namespace)
        problems = info.value.problems
        assert info.value.errors
    lines = [str(p) for p in problems]
    for fragment in fragments:
        assert any(fragment in line for line in lines), f"{fragment!r} not in {lines}"


SEED_FILES = sorted(SEEDS.glob("*.yaml"))


def _seed_namespace(path: Path) -> str | None:
    # Seed 02 applies everything with `kubectl -n test apply`, except the IstioOperator,
    # which goes through `istioctl install -f -` (no namespace flag).
    if path.name.startswith("02-") and "istiooperator" not in path.name:
        return "test"
    return None


@pytest.mark.parametrize("path", SEED_FILES, ids=[p.name for p in SEED_FILES])
def test_seed_manifest_loads_cleanly(path: Path) -> None:
    result = load_paths([str(path)], _seed_namespace(path))
    assert result.resources
    assert result.warnings == ()
    expected_ns = _seed_namespace(path) or "default"
    for res in result.resources:
        if res.kind != "IstioOperator":
            assert res.namespace == expected_ns


def test_seed_directory_loads_as_one_input() -> None:
    seed02 = [str(p) for p in SEED_FILES if _seed_namespace(p) == "test"]
    result = load_paths(seed02, "test")
    refs = {r.ref for r in result.resources}
    assert "Gateway test/sni-gateway" in refs
    assert "VirtualService test/helloworld" in refs
    gw = next(r for r in result.resources if r.ref == "Gateway test/sni-gateway")
    assert isinstance(gw, Gateway)
    assert [s.tls.credential_name for s in gw.spec.servers if s.tls] == [
        "httpbin-secret",
        "helloworld-secret",
    ]


def test_istio_operator_without_metadata_gets_istioctl_name() -> None:
    result = load_paths([str(SEEDS / "02-istiooperator-installed-state.yaml")], None)
    (iop,) = result.resources
    assert iop.ref == "IstioOperator istio-system/installed-state"
    assert iop.spec.mesh_config.mesh_mtls.min_protocol_version == "TLSV1_3"


def test_missing_name_is_only_allowed_for_istio_operator() -> None:
    with pytest.raises(ResourceError, match="resource name may not be empty"):
        load_text("apiVersion: v1\nkind: ConfigMap\n", "cm.yaml")


def test_multi_document_empty_documents_and_default_namespace() -> None:
    text = "---\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: test\n  namespace: x\n---\n"
    (ns,) = load_text(text).resources
    assert ns.ref == "Namespace test"
    assert ns.metadata.namespace is None  # cluster-scoped: namespace dropped as kubectl does
    cm = load_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n").resources[0]
    assert cm.namespace == "default"


def test_object_namespace_is_kept_when_no_flag_given() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: istio-system}\n"
    assert load_text(text, namespace=None).resources[0].namespace == "istio-system"
    assert load_text(text, namespace="istio-system").resources[0].namespace == "istio-system"


def test_json_input_and_kind_list() -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}},
        ],
    }
    result = load_text(json.dumps(doc, indent="\t"), "list.json", "test")
    assert [r.ref for r in result.resources] == ["ConfigMap test/a", "ConfigMap test/b"]
    assert all(isinstance(r, ConfigMap) for r in result.resources)


def test_all_problems_of_an_input_are_reported_together() -> None:
    text = (BAD / "08-tls-mode-typo.yaml").read_text() + "---\n" + (BAD / "06-wrong-type.yaml").read_text()
    text = text.replace("name: sni-gateway", "name: gw-a", 1)
    with pytest.raises(ResourceError) as info:
        load_text(text, "two.yaml", "test")
    fields = [p.field for p in info.value.errors]
    assert fields == ["spec.servers[0].tls.mode", "spec.servers[0].port.number"]
    assert [p.line for p in info.value.errors] == [14, 28]
    assert str(info.value).count("\n") == 1


def test_unknown_top_level_and_nested_fields_suggest_names() -> None:
    text = (BAD / "09-https-without-tls.yaml").read_text().replace("  servers:", "  sever:")
    with pytest.raises(ResourceError) as info:
        load_text(text, "gw.yaml", "test")
    lines = [str(p) for p in info.value.problems]
    assert any('spec.sever: unknown field "sever"; did you mean "servers"?' in x for x in lines)


def test_gateway_without_servers_is_refused_by_validation() -> None:
    text = (BAD / "09-https-without-tls.yaml").read_text().split("  servers:")[0]
    with pytest.raises(ResourceError) as info:
        load_text(text, "gw.yaml", "test")
    assert any("spec.servers: gateway must have at least one server" in str(p)
               for p in info.value.problems)


def test_snake_case_field_names_are_not_accepted_from_yaml() -> None:
    text = (BAD / "05-unknown-field.yaml").read_text().replace("credentialname", "credential_name")
    with pytest.raises(ResourceError, match='did you mean "credentialName"'):
        load_text(text, "gw.yaml", "test")


def test_union_type_error_names_both_types() -> None:
    text = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports:\n  - port: 80\n    targetPort: [1]\n"
    with pytest.raises(ResourceError) as info:
        load_text(text, "s.yaml")
    (problem,) = info.value.problems
    assert problem.field == "spec.ports[0].targetPort"
    assert problem.message == "expected integer or string, got a list"
    assert problem.line == 7


def test_load_paths_reads_directories_sorted_and_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "b.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n")
    (tmp_path / "a.yml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    (tmp_path / "notes.txt").write_text("not yaml: [")
    monkeypatch.setattr("sys.stdin", io.StringIO("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"))
    result = load_paths([str(tmp_path), "-"], "test")
    assert [r.name for r in result.resources] == ["a", "b", "c"]


def test_load_paths_duplicate_across_files_and_missing_path(tmp_path: Path) -> None:
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: same}\n"
    (tmp_path / "one.yaml").write_text(body)
    (tmp_path / "two.yaml").write_text(body)
    with pytest.raises(ResourceError) as info:
        load_paths([str(tmp_path), str(tmp_path / "nope.yaml")], None)
    text = str(info.value)
    assert f"also defined at {tmp_path / 'one.yaml'}:3" in text
    assert f'the path "{tmp_path / "nope.yaml"}" does not exist' in text


def test_load_object_builds_a_secret_without_lines() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": "httpbin-secret"},
        "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"},
    }
    secret = load_object(obj, "create secret tls", "istio-system")
    assert isinstance(secret, Secret)
    assert secret.ref == "Secret istio-system/httpbin-secret"
    assert secret.values() == {"tls.crt": b"cert", "tls.key": b"key"}
    assert "namespace" not in obj["metadata"], "the caller's dict must not be modified"
    del obj["data"]["tls.key"]
    with pytest.raises(ResourceError) as info:
        load_object(obj, "create secret tls", "istio-system")
    assert str(info.value) == (
        "create secret tls: Secret istio-system/httpbin-secret: data[tls.key]: Required value;"
        " type kubernetes.io/tls needs tls.crt and tls.key"
    )


def test_service_name_must_be_a_dns_1035_label() -> None:
    with pytest.raises(ResourceError, match="a DNS-1035 label must consist of"):
        load_text("apiVersion: v1\nkind: Service\nmetadata: {name: 1svc}\nspec:\n  ports: [{port: 80}]\n")
    assert isinstance(
        load_text(
            "apiVersion: v1\nkind: Service\nmetadata: {name: svc1}\nspec:\n  ports: [{port: 80}]\n"
        ).resources[0],
        Service,
    )


def test_problem_string_format() -> None:
    problem = Problem(
        "gw.yaml",
        14,
        "Gateway test/sni-gateway",
        "spec.servers[0].tls.mode",
        'unknown value "SIMPEL"',
        "error",
        'did you mean "SIMPLE"?',
    )
    assert str(problem) == (
        'gw.yaml:14: Gateway test/sni-gateway: spec.servers[0].tls.mode: unknown value "SIMPEL";'
        ' did you mean "SIMPLE"?'
    )
    assert str(Problem("-", None, None, None, "boom")) == "-: boom"
    error = ResourceError([problem, Problem("x.yaml", 1, None, None, "w", "warning")])
    assert str(error).splitlines()[1] == "x.yaml:1: warning: w"
    assert error.errors == [problem]


def test_load_object_rejects_a_list_of_objects() -> None:
    with pytest.raises(ResourceError, match="expected exactly one object"):
        load_object({"apiVersion": "v1", "kind": "List", "items": []}, "cli", None)

"""The OpenShift router of a local mesh: HAProxy in pod `router-default-…` of namespace
openshift-ingress, its configuration written from the Routes on every push and reloaded
without dropping connections.

Owns: the router's directory in the state dir (configuration, certificates, sockets —
bound into the router pod at the same path), the router's settings (apps domain, ports
published on the host's 127.0.0.1), validating a new configuration with `haproxy -c`
before it replaces the old one, and the reload (HAProxy's master-worker mode: the master
re-executes itself with the new file, new workers take over the listening sockets, old
workers finish their connections), and the service CA operator's writes (rules in
model.service_ca, signing in router.pki). Route semantics live in `sailmesh.router`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sailmesh.meshd.paths import Home
from sailmesh.model import diagnostics as codes
from sailmesh.model.diagnostics import Diagnostic
from sailmesh.model.route_admission import DEFAULT_APPS_DOMAIN, Admission, admit
from sailmesh.model.route_backends import PodEndpoint, service_units
from sailmesh.model.service_ca import Changes
from sailmesh.model.service_ca import reconcile as reconcile_service_ca
from sailmesh.model.snapshot import Snapshot
from sailmesh.resources.core import Service
from sailmesh.resources.openshift import Route
from sailmesh.router.haproxy import RouterFile, RouterSettings, render
from sailmesh.router.pki import RouterPKI, ServiceCA, ensure_pki
from sailmesh.runtime.pods import ContainerPlan

log = logging.getLogger("sailmesh.router")

DOMAIN_ENV = "SAILMESH_APPS_DOMAIN"
HTTP_PORT_ENV = "SAILMESH_ROUTER_HTTP_PORT"
HTTPS_PORT_ENV = "SAILMESH_ROUTER_HTTPS_PORT"
DEFAULT_HTTP_PORT = 80
DEFAULT_HTTPS_PORT = 443
# Copies of the router's certificates inside its directory (the router pod sees only that
# directory, never the CA keys).
DEFAULT_CERT = "conf/default_pub_keys.pem"
SERVICE_CA = "service-ca.crt"


@dataclass(frozen=True)
class RouterConfig:
    apps_domain: str
    host_http_port: int
    host_https_port: int

    @classmethod
    def from_env(cls) -> RouterConfig:
        def port(name: str, default: int) -> int:
            value = os.environ.get(name, str(default))
            if not value.isdigit() or not 0 < int(value) < 65536:
                raise SystemExit(f"{name}={value!r}: give a TCP port number")
            return int(value)

        return cls(os.environ.get(DOMAIN_ENV, DEFAULT_APPS_DOMAIN).strip(".").lower(),
                   port(HTTP_PORT_ENV, DEFAULT_HTTP_PORT), port(HTTPS_PORT_ENV, DEFAULT_HTTPS_PORT))


class OpenShiftRouter:
    def __init__(self, home: Home, config: RouterConfig, host_netns_path: str) -> None:
        self.home = home
        self.config = config
        self.dir = home.run / "router"
        self.pki_dir = home.root / "router"
        self._host_netns_path = host_netns_path
        self.admission = Admission([], {}, {})
        self.problem = ""
        self._written: dict[str, bytes] = {}
        self._pki: RouterPKI | None = None
        self._service_ca: ServiceCA | None = None
        # A reload that could not be delivered (HAProxy still starting); retried on the
        # next push, which the router pod's readiness change brings.
        self._reload_pending = False

    @property
    def master_socket(self) -> Path:
        return self.dir / "run" / "master.sock"

    @property
    def config_file(self) -> Path:
        return self.dir / "conf" / "haproxy.config"

    def pki(self) -> RouterPKI:
        if self._pki is None:
            self._pki = ensure_pki(self.pki_dir, self.config.apps_domain, datetime.now(UTC))
        return self._pki

    def service_ca(self) -> ServiceCA:
        if self._service_ca is None:
            self.pki()
            self._service_ca = ServiceCA(self.pki_dir, datetime.now(UTC))
        return self._service_ca

    def service_ca_changes(self, snap: Snapshot) -> Changes:
        """What the service CA operator writes for this snapshot (serving certificate
        Secrets, Service annotations, CA bundles; Secrets of deleted Services)."""
        return reconcile_service_ca(snap, self.service_ca(), datetime.now(UTC))

    def settings(self) -> RouterSettings:
        # HAProxy's `namespace` names a file under /var/run/netns; the host's handle lives
        # in the state dir, reached from there by a relative path.
        netns = "../../.." + self._host_netns_path
        return RouterSettings(root=str(self.dir),
                              default_certificate=str(self.dir / DEFAULT_CERT),
                              service_ca=str(self.dir / SERVICE_CA), host_netns=netns,
                              host_http_port=self.config.host_http_port,
                              host_https_port=self.config.host_https_port)

    def container(self, argv0: str = "haproxy") -> ContainerPlan:
        """The router container: HAProxy in master-worker mode, in the foreground."""
        self.prepare()
        exe = shutil.which(argv0) or argv0
        return ContainerPlan(
            name="router",
            argv=(exe, "-W", "-db", "-f", str(self.config_file), "-S", str(self.master_socket)),
            env={},
            # The configuration names the host's network namespace by a path relative to
            # /var/run/netns (HAProxy's fixed directory): that directory (empty) and the
            # host's handle are both in the pod, and joining the namespace needs SYS_ADMIN.
            host_paths=(str(self.dir), self._host_netns_path),
            binds=((str(self.dir / "netns"), "/var/run/netns"),),
            capabilities_add=("SYS_ADMIN",),
        )

    def prepare(self) -> None:
        """The directory and a configuration to start from (no Routes yet)."""
        if self.config_file.exists():
            return
        for sub in ("conf", "run", "netns", "router/certs", "router/cacerts", "router/allowlists"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self._write(self._with_certificates(render([], {}, self.settings())))
        self._mark_loaded()

    def hosts(self, snap: Snapshot) -> list[str]:
        """Hosts of the admitted Routes, for the pods' hosts files."""
        return sorted({a.host for a in admit(snap.of_kind(Route), self.config.apps_domain).admitted})

    def update(self, snap: Snapshot, pods: Sequence[PodEndpoint]) -> bool:
        """Admit the Routes, write the configuration and reload HAProxy if it changed.
        Returns whether a reload was requested."""
        self.prepare()
        self.admission = admit(snap.of_kind(Route), self.config.apps_domain)
        services: Mapping[tuple[str, str], Service] = {
            (s.namespace, s.name): s for s in snap.of_kind(Service)}
        units = {(a.route.namespace, a.route.name): service_units(a.route, services, pods)
                 for a in self.admission.admitted}
        files = self._with_certificates(render(self.admission.admitted, units, self.settings()))
        if not self._written and self._loaded_marker() == _digest(files):
            # A new control plane finds HAProxy running what it would write: adopt it as is
            # (a reload would replace the worker for nothing).
            self._written = {p: f.content for p, f in files.items()}
        unchanged = bool(self._written) and all(
            self._written.get(p) == f.content for p, f in files.items())
        if unchanged:
            return self.reload() if self._reload_pending else False
        previous = {p: (self.dir / p).read_bytes() for p in files if (self.dir / p).exists()}
        self._write(files)
        check = subprocess.run(["haproxy", "-c", "-q", "-f", str(self.config_file)],
                               capture_output=True, text=True, check=False)
        if check.returncode != 0:
            # Keep serving the last good configuration (HAProxy has not seen this one).
            self.problem = check.stderr.strip() or check.stdout.strip()
            log.error("router configuration refused by haproxy -c: %s", self.problem)
            for p, content in previous.items():
                (self.dir / p).write_bytes(content)
            self._written = {}
            return False
        self.problem = ""
        return self.reload()

    def reload(self) -> bool:
        """Ask the master process to reload (master CLI `reload`)."""
        self._reload_pending = True
        if not self.master_socket.exists():
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect(str(self.master_socket))
                s.sendall(b"reload\n")
                while s.recv(4096):
                    pass
        except OSError as exc:
            log.info("router reload deferred: %s", exc)
            return False
        self._reload_pending = False
        self._mark_loaded()
        return True

    def _mark_loaded(self) -> None:
        """Record what HAProxy runs (or reads when it starts): the files just written."""
        (self.dir / "run" / "loaded").write_text(_digest(
            {p: RouterFile(c) for p, c in self._written.items()}))

    def _loaded_marker(self) -> str:
        """Digest of the files the last successful reload handed to HAProxy."""
        try:
            return (self.dir / "run" / "loaded").read_text()
        except OSError:
            return ""

    def statuses(self, snap: Snapshot) -> dict[str, Any]:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {f"{r.namespace}/{r.name}": self.admission.status(r, self.config.apps_domain, now)
                for r in snap.of_kind(Route)}

    def diagnostics(self) -> list[Diagnostic]:
        """Routes the router did not admit, and a configuration HAProxy refused."""
        out = [Diagnostic("warning", f"Route {ns}/{name}", None,
                          f"not admitted by the router: {r.reason}: {r.message}",
                          codes.ROUTE_NOT_ADMITTED)
               for (ns, name), r in sorted(self.admission.rejected.items())]
        if self.problem:
            out.append(Diagnostic("error", "Deployment openshift-ingress/router-default", None,
                                  "the router keeps its previous configuration; haproxy "
                                  f"refused the new one: {self.problem}",
                                  codes.ROUTER_CONFIG_REFUSED))
        return out

    def info(self) -> dict[str, Any]:
        return {"appsDomain": self.config.apps_domain,
                "httpPort": self.config.host_http_port,
                "httpsPort": self.config.host_https_port,
                "caFile": str(self.pki().router_ca),
                "serviceCAFile": str(self.pki().service_ca),
                "problem": self.problem}

    def _with_certificates(self, files: dict[str, RouterFile]) -> dict[str, RouterFile]:
        pki = self.pki()
        return {**files, DEFAULT_CERT: RouterFile(pki.default_certificate.read_bytes(), 0o600),
                SERVICE_CA: RouterFile(pki.service_ca.read_bytes())}

    def _write(self, files: Mapping[str, RouterFile]) -> None:
        for path, f in files.items():
            target = self.dir / path
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, f.mode)
            with os.fdopen(fd, "wb") as out:
                out.write(f.content)
            os.chmod(tmp, f.mode)
            os.replace(tmp, target)
            self._written[path] = f.content
        # Certificates of Routes that are gone.
        for sub in ("router/certs", "router/cacerts", "router/allowlists"):
            for old in (self.dir / sub).glob("*.*"):
                if f"{sub}/{old.name}" not in files:
                    old.unlink()
                    self._written.pop(f"{sub}/{old.name}", None)


def _digest(files: Mapping[str, RouterFile]) -> str:
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(f"{path}\0{len(files[path].content)}\0".encode())
        h.update(files[path].content)
    return h.hexdigest()

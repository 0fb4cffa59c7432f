"""A real local mesh for end-to-end tests, driven only through the `sailctl` command line.

One mesh per test module (it takes a few seconds to start); each gets its own state dir
and instance name, so it never touches a mesh the developer runs.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
BIN = Path(sys.executable).parent
SAILCTL = str(BIN / "sailctl")

# The seed's certificate commands (02-tls-gateway-sni-mutual-passthrough, 生成域名证书).
SEED_CERT_COMMANDS = [
    "mkdir -p example_certs1",
    "openssl req -x509 -sha256 -nodes -days 365 -newkey rsa:2048 -subj '/O=example Inc./CN=example.com' -keyout example_certs1/example.com.key -out example_certs1/example.com.crt",
    'openssl req -out example_certs1/httpbin.example.com.csr -newkey rsa:2048 -nodes -keyout example_certs1/httpbin.example.com.key -subj "/CN=httpbin.example.com/O=httpbin organization"',
    "openssl x509 -req -sha256 -days 365 -CA example_certs1/example.com.crt -CAkey example_certs1/example.com.key -set_serial 0 -in example_certs1/httpbin.example.com.csr -out example_certs1/httpbin.example.com.crt",
    'openssl req -out example_certs1/helloworld.example.com.csr -newkey rsa:2048 -nodes -keyout example_certs1/helloworld.example.com.key -subj "/CN=helloworld.example.com/O=helloworld organization"',
    "openssl x509 -req -sha256 -days 365 -CA example_certs1/example.com.crt -CAkey example_certs1/example.com.key -set_serial 1 -in example_certs1/helloworld.example.com.csr -out example_certs1/helloworld.example.com.crt",
    'openssl req -out example_certs1/client.example.com.csr -newkey rsa:2048 -nodes -keyout example_certs1/client.example.com.key -subj "/CN=client.example.com/O=client organization"',
    "openssl x509 -req -sha256 -days 365 -CA example_certs1/example.com.crt -CAkey example_certs1/example.com.key -set_serial 1 -in example_certs1/client.example.com.csr -out example_certs1/client.example.com.crt",
]


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Mesh:
    home: Path
    work: Path
    instance: str
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(cls, instance: str) -> Mesh:
        for port in (8080, 8443):
            if port_in_use(port):
                raise RuntimeError(
                    f"127.0.0.1:{port} is in use; the end-to-end tests need the ingress ports"
                    " (is a mesh running? `sailctl down` stops it)"
                )
        home = Path(tempfile.mkdtemp(prefix=f"sm{instance}-", dir="/tmp"))
        work = home / "work"
        work.mkdir()
        env = {**os.environ, "SAILMESH_HOME": str(home), "SAILMESH_INSTANCE": instance,
               "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
               "INGRESS_HOST": "127.0.0.1", "INGRESS_PORT": "8080", "SECURE_INGRESS_PORT": "8443"}
        mesh = cls(home=home, work=work, instance=instance, env=env)
        try:
            mesh.sailctl("up", "-d", timeout=90)
        except BaseException:
            mesh.stop()  # a half-started mesh must not outlive the test
            raise
        return mesh

    def stop(self) -> None:
        self.sailctl("down", check=False, timeout=60)
        shutil.rmtree(self.home, ignore_errors=True)

    def sh(self, cmd: str, *, check: bool = True, timeout: float = 60,
           input: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(cmd, shell=True, cwd=self.work, env=self.env, text=True,
                              capture_output=True, timeout=timeout, input=input,
                              executable="/bin/bash")
        if check and proc.returncode != 0:
            raise AssertionError(f"`{cmd}` failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def sailctl(self, *args: str, check: bool = True, timeout: float = 60,
                input: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([SAILCTL, *args], cwd=self.work, env=self.env, text=True,
                              capture_output=True, timeout=timeout, input=input)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"sailctl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def seed_certificates(self) -> Path:
        for cmd in SEED_CERT_COMMANDS:
            self.sh(cmd)
        return self.work / "example_certs1"

    def wait_pods_ready(self, namespace: str, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        out = ""
        while time.monotonic() < deadline:
            out = self.sailctl("get", "pods", "-n", namespace, check=False).stdout
            rows = [line.split() for line in out.splitlines()[1:] if line.strip()]
            ready = [r for r in rows if r[1].split("/")[0] == r[1].split("/")[1] and r[2] == "Running"]
            if len(ready) >= count:
                return
            time.sleep(0.2)
        raise AssertionError(f"pods in {namespace} not ready after {timeout}s:\n{out}")

    def curl(self, *args: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["curl", "-sS", "--max-time", "10", *args], cwd=self.work,
                              env=self.env, text=True, capture_output=True, timeout=timeout)

    def status_code(self, *args: str) -> str:
        return self.curl("-o", "/dev/null", "-w", "%{http_code}", *args).stdout


def eventually(check: Callable[[], None], timeout: float = 15.0) -> None:
    """Run `check` until it stops raising AssertionError (config reaches proxies and the
    router asynchronously); its last failure is raised after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def peer_certificate(host: str, port: int, server_name: str | None,
                     cafile: Path | None = None) -> dict | bytes:
    """The certificate the server presents for an SNI, via Python's ssl (DER bytes)."""
    ctx = ssl.create_default_context(cafile=str(cafile)) if cafile else ssl._create_unverified_context()
    if server_name is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=5) as raw, ctx.wrap_socket(
        raw, server_hostname=server_name
    ) as tls:
        return tls.getpeercert(binary_form=True)


def deployment(ns: str, name: str, sa: str | None, command: list[str] | None, image: str,
               port: int | None = None, volumes: dict[str, str] | None = None,
               labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A one-replica Deployment manifest; `volumes` maps Secret names to mount paths."""
    labels = labels or {"app": name}
    container: dict[str, Any] = {"name": name, "image": image}
    if command:
        container["command"] = command
    if port:
        container["ports"] = [{"containerPort": port}]
    spec: dict[str, Any] = {"containers": [container]}
    if sa:
        spec["serviceAccountName"] = sa
    if volumes:
        container["volumeMounts"] = [{"name": s, "mountPath": p, "readOnly": True}
                                     for s, p in volumes.items()]
        spec["volumes"] = [{"name": s, "secret": {"secretName": s}} for s in volumes]
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": labels["app"]}},
                     "template": {"metadata": {"labels": labels}, "spec": spec}}}

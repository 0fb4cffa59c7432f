"""`make demo`: the seed's multi-host (SNI) gateway, end to end, with real certificates,
real Envoy and real curl — every command printed before it runs, like the tutorial.

Leaves the mesh running so that you can go on with `sailctl`; `sailctl down` stops it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "sni-gateway"
WORK = ROOT / ".demo"
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}

# The seed's certificate commands, unchanged (section 生成域名证书).
CERTS = [
    "mkdir -p example_certs1",
    "openssl req -x509 -sha256 -nodes -days 365 -newkey rsa:2048 -subj '/O=example Inc./CN=example.com'"
    " -keyout example_certs1/example.com.key -out example_certs1/example.com.crt",
    "openssl req -out example_certs1/httpbin.example.com.csr -newkey rsa:2048 -nodes -keyout"
    " example_certs1/httpbin.example.com.key -subj \"/CN=httpbin.example.com/O=httpbin organization\"",
    "openssl x509 -req -sha256 -days 365 -CA example_certs1/example.com.crt -CAkey"
    " example_certs1/example.com.key -set_serial 0 -in example_certs1/httpbin.example.com.csr"
    " -out example_certs1/httpbin.example.com.crt",
    "openssl req -out example_certs1/helloworld.example.com.csr -newkey rsa:2048 -nodes -keyout"
    " example_certs1/helloworld.example.com.key -subj \"/CN=helloworld.example.com/O=helloworld organization\"",
    "openssl x509 -req -sha256 -days 365 -CA example_certs1/example.com.crt -CAkey"
    " example_certs1/example.com.key -set_serial 1 -in example_certs1/helloworld.example.com.csr"
    " -out example_certs1/helloworld.example.com.crt",
]

CURLS = [
    'curl -sS -w " -> HTTP %{http_code}\\n" --resolve "httpbin.example.com:$INGRESS_PORT:$INGRESS_HOST"'
    ' "http://httpbin.example.com:$INGRESS_PORT/status/418"',
    'curl -sS -w " -> HTTP %{http_code}\\n" --resolve "httpbin.example.com:$SECURE_INGRESS_PORT:$INGRESS_HOST"'
    ' --cacert example_certs1/example.com.crt "https://httpbin.example.com:$SECURE_INGRESS_PORT/status/418"',
    'curl -sS -w " -> HTTP %{http_code}\\n" --resolve "helloworld.example.com:$SECURE_INGRESS_PORT:$INGRESS_HOST"'
    ' --cacert example_certs1/example.com.crt  "https://helloworld.example.com:$SECURE_INGRESS_PORT/hello"',
]


def step(title: str) -> None:
    print(f"\n\033[1m== {title}\033[0m", flush=True)


def sh(cmd: str, *, check: bool = True, quiet: bool = False) -> str:
    print(f"$ {cmd}", flush=True)
    proc = subprocess.run(cmd, shell=True, cwd=WORK, env=ENV, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, executable="/bin/bash")
    if proc.stdout and not quiet:
        print(proc.stdout.rstrip(), flush=True)
    if check and proc.returncode != 0:
        sys.exit(f"demo: command failed ({proc.returncode}): {cmd}")
    return proc.stdout


def wait_ready(namespace: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["sailctl", "get", "pods", "-n", namespace], env=ENV, text=True,
                             capture_output=True).stdout
        rows = [line.split() for line in out.splitlines()[1:]]
        if rows and all(r[1].split("/")[0] == r[1].split("/")[1] for r in rows):
            return
        time.sleep(0.3)
    sh(f"sailctl get pods -n {namespace}", check=False)
    sys.exit(f"demo: pods in {namespace} did not become ready in {timeout:.0f}s")


def main() -> None:
    WORK.mkdir(exist_ok=True)
    step("start the local mesh (control plane + istio-ingressgateway)")
    sh("sailctl up -d")

    step("certificates, with the tutorial's openssl commands")
    for c in CERTS:
        sh(c, quiet=True)

    step("the applications (namespace test)")
    sh("sailctl create namespace test", check=False)
    sh(f"sailctl -n test apply -f {shlex.quote(str(EXAMPLES / 'httpbin.yaml'))}")
    sh(f"sailctl -n test apply -f {shlex.quote(str(EXAMPLES / 'helloworld.yaml'))}")

    step("TLS credentials for the gateway (namespace istio-system)")
    for host in ("httpbin", "helloworld"):
        sh(f"sailctl delete -n istio-system secret {host}-secret --ignore-not-found", quiet=True)
        sh(f"sailctl create -n istio-system secret tls {host}-secret"
           f" --key=example_certs1/{host}.example.com.key --cert=example_certs1/{host}.example.com.crt")

    step("the sni-gateway Gateway and its VirtualServices")
    sh(f"sailctl -n test apply -f {shlex.quote(str(EXAMPLES / 'gateway.yaml'))}")
    sh(f"sailctl -n test apply -f {shlex.quote(str(EXAMPLES / 'virtualservices.yaml'))}")
    wait_ready("test")
    sh("sailctl get pods -A")

    step("requests through the gateway (eval \"$(sailctl env)\")")
    for c in CURLS:
        sh(f'eval "$(sailctl env)" && {c}')
    sh('eval "$(sailctl env)" && curl -s -o /dev/null -w "helloworld.example.com/other -> HTTP %{http_code}\\n"'
       ' --resolve "helloworld.example.com:$SECURE_INGRESS_PORT:$INGRESS_HOST"'
       ' --cacert example_certs1/example.com.crt "https://helloworld.example.com:$SECURE_INGRESS_PORT/other"')

    step("each host presents its own certificate (SNI)")
    for host in ("httpbin.example.com", "helloworld.example.com"):
        sh(f"openssl s_client -connect 127.0.0.1:8443 -servername {host} </dev/null 2>/dev/null"
           " | openssl x509 -noout -subject -serial")

    step("the gateway's listeners, read from Envoy")
    sh("sailctl proxy-config listener deploy/istio-ingressgateway -n istio-system")
    print("\nThe mesh is still running: try `sailctl get gateways -n test`, "
          "`sailctl proxy-config route deploy/istio-ingressgateway -n istio-system`; "
          "`sailctl down` stops it.")


if __name__ == "__main__":
    main()

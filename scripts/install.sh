#!/usr/bin/env bash
# Installs what sailmesh needs on a fresh Debian/Ubuntu machine, as root:
# system packages (only those missing) and the Python package into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ip >/dev/null       || need+=(iproute2)
command -v iptables >/dev/null || need+=(iptables)
command -v curl >/dev/null     || need+=(curl)
command -v openssl >/dev/null  || need+=(openssl)
command -v nginx >/dev/null    || need+=(nginx-light)
command -v unshare >/dev/null  || need+=(util-linux)
command -v ss >/dev/null       || need+=(iproute2)
# The dashboard: cytoscape.js comes from the npm registry; its tests drive Debian's
# chromium through chromium-driver and scrape the mesh with Debian's Prometheus.
command -v npm >/dev/null          || need+=(npm)
command -v chromium >/dev/null     || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
command -v prometheus >/dev/null   || need+=(prometheus)
command -v haproxy >/dev/null  || need+=(haproxy)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing system packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
  # sailmesh starts nginx itself, inside pods; the distribution's service stays off.
  if [[ " ${need[*]} " == *" nginx-light "* ]]; then
    (service nginx stop || true) >/dev/null 2>&1
  fi
  # Tests start their own Prometheus on a free port; the distribution's service stays off.
  if [[ " ${need[*]} " == *" prometheus "* ]]; then
    (service prometheus stop || true) >/dev/null 2>&1
  fi
  # Likewise HAProxy: sailmesh runs it as the OpenShift router, in its own pod.
  if [[ " ${need[*]} " == *" haproxy "* ]]; then
    (service haproxy stop || true) >/dev/null 2>&1
  fi
fi

PY=${PY:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
echo "==> installing sailmesh and its dependencies into .venv"
.venv/bin/pip install -q -e '.[test]' 2> >(grep -v "is ignored: it is neither" >&2)
# httpbin's greenlet<3 pin (Python < 3.12) conflicts with gevent's greenlet>=3; see pyproject.
.venv/bin/pip install -q --no-deps 'httpbin>=0.10.4' 2> >(grep -v "is ignored: it is neither" >&2)
echo "==> $(.venv/bin/envoy --version | sed 's/^.*version: //')"
# cytoscape.js (the dashboard's graph layout and drawing), from the npm registry, into the
# virtualenv where `sailctl dashboard` looks for it.
web=.venv/share/sailmesh/web
if [ ! -f "$web/node_modules/cytoscape/dist/cytoscape.min.js" ]; then
  echo "==> installing cytoscape.js from the npm registry"
  mkdir -p "$web"
  npm install --prefix "$web" --no-audit --no-fund --no-save --silent 'cytoscape@3.34' >/dev/null
fi

"""Container images → local commands.

There is no image store: a container runs its `command` + `args` as given, with the
executable looked up in the virtualenv's bin directory first (so `gunicorn` is the one
installed beside sailmesh), then on PATH. Well-known sample images without a command map
to local equivalents (table `_KNOWN_IMAGES`); anything else is an ImageError naming the
image and the known ones.

Kubernetes rules kept: `command` replaces the image's ENTRYPOINT and `args` its CMD; an
image without an ENTRYPOINT runs `args` as the command (tcp-echo-server has one: its
`args` are the server's ports and prefix).

Must not know about pods' namespaces or processes; reads only host files it copies into
an image's content (nginx's mime.types).
"""

from __future__ import annotations

import fnmatch
import functools
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from sailmesh.resources.core import Container, PodSecurityContext
from sailmesh.runtime.errors import ContainerConfigError, ImageError
from sailmesh.runtime.plans import ContainerPlan, VolumePlan
from sailmesh.runtime.security_context import process_security

_FALLBACK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ImageDefaults:
    argv: tuple[str, ...]  # the image's CMD (with an empty entrypoint, the whole command)
    env: Mapping[str, str]
    volumes: tuple[VolumePlan, ...] = ()
    entrypoint: tuple[str, ...] = ()


@dataclass(frozen=True)
class KnownImage:
    patterns: tuple[str, ...]  # fnmatch patterns, tried on the repository and the full name
    local: str  # what runs instead, for messages
    defaults: Callable[[], ImageDefaults]
    family: str  # the sample it belongs to, for messages


# (name, search path) → where it was found. Every sync plans every container again, and a
# lookup tries each directory of PATH in turn (~30 µs for /usr/bin/sleep): a path found
# once is only checked to still be there.
_found: dict[tuple[str, str], str] = {}


def find_executable(name: str) -> str | None:
    """Absolute path of `name`, the virtualenv's bin directory first. A command found
    earlier is taken from there while it is still an executable file; a command not
    found is looked for again on every call, so one installed later is found."""
    if "/" in name:
        return name
    venv_bin = os.path.dirname(sys.executable)
    search = os.pathsep.join([venv_bin, os.environ.get("PATH", _FALLBACK_PATH)])
    found = _found.get((name, search))
    if found is not None and os.access(found, os.X_OK) and not os.path.isdir(found):
        return found
    found = shutil.which(name, path=search)
    if found is None:
        _found.pop((name, search), None)
    else:
        _found[(name, search)] = found
    return found


def _helloworld(version: str) -> Callable[[], ImageDefaults]:
    def build() -> ImageDefaults:
        return ImageDefaults(
            argv=(sys.executable, "-P", "-m", "sailmesh.apps.helloworld"),
            env={"SERVICE_VERSION": version},
        )

    return build


def _httpbin(port: int, app: str = "httpbin:app") -> Callable[[], ImageDefaults]:
    """The httpbin API (the Python package the seeds run) on the image's own port:
    go-httpbin listens on 8080 and lists header values (sailmesh.apps.go_httpbin),
    kennethreitz/httpbin on 80."""
    def build() -> ImageDefaults:
        return ImageDefaults(
            argv=("gunicorn", "-b", f"0.0.0.0:{port}", app, "-k", "gevent"),
            env={"WORKON_HOME": "/tmp"},
        )

    return build


def _bookinfo(role: str, **env: str) -> Callable[[], ImageDefaults]:
    def build() -> ImageDefaults:
        return ImageDefaults(argv=(sys.executable, "-P", "-m", "sailmesh.apps.bookinfo", role),
                             env=env)

    return build


def _tcp_echo() -> ImageDefaults:
    """ENTRYPOINT the server, CMD `9000 hello`, as the image's Dockerfile."""
    return ImageDefaults(argv=("9000", "hello"), env={},
                         entrypoint=(sys.executable, "-P", "-m", "sailmesh.apps.tcp_echo"))


def _sleep() -> ImageDefaults:
    return ImageDefaults(argv=("sleep", "infinity"), env={})


# The official image's layout (/etc/nginx/nginx.conf including conf.d/*.conf only, logs
# to stdout/stderr) with pid and temp files in the pod's private /tmp, since the host's
# /run and /var/lib/nginx belong to the host's own nginx.
_NGINX_CONF = """\
worker_processes  1;
error_log  stderr notice;
pid        /tmp/nginx.pid;

events {
    worker_connections  1024;
}

http {
    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;
    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';
    access_log  /dev/stdout  main;
    client_body_temp_path  /tmp/nginx_client_body;
    proxy_temp_path        /tmp/nginx_proxy;
    fastcgi_temp_path      /tmp/nginx_fastcgi;
    uwsgi_temp_path        /tmp/nginx_uwsgi;
    scgi_temp_path         /tmp/nginx_scgi;
    sendfile        on;
    keepalive_timeout  65;
    include /etc/nginx/conf.d/*.conf;
}
"""

_NGINX_DEFAULT_SERVER = """\
server {
    listen       80;
    server_name  localhost;

    location / {
        root   /usr/share/nginx/html;
        index  index.html index.htm;
    }

    error_page   500 502 503 504  /50x.html;
    location = /50x.html {
        root   /usr/share/nginx/html;
    }
}
"""

_NGINX_INDEX = """\
<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>
</body>
</html>
"""

_NGINX_50X = """\
<!DOCTYPE html>
<html>
<head><title>Error</title></head>
<body>
<h1>An error occurred.</h1>
<p>Sorry, the page you are looking for is currently unavailable.</p>
</body>
</html>
"""

_MINIMAL_MIME_TYPES = """\
types {
    text/html  html htm;
    text/css  css;
    text/plain  txt;
    application/javascript  js;
    application/json  json;
    image/png  png;
}
"""


def _nginx() -> ImageDefaults:
    host_mime = Path("/etc/nginx/mime.types")
    mime = host_mime.read_bytes() if host_mime.is_file() else _MINIMAL_MIME_TYPES.encode()
    etc = VolumePlan(
        mount_path="/etc/nginx",
        files={
            "nginx.conf": _NGINX_CONF.encode(),
            "mime.types": mime,
            "conf.d/default.conf": _NGINX_DEFAULT_SERVER.encode(),
        },
        read_only=False,
    )
    html = VolumePlan(
        mount_path="/usr/share/nginx/html",
        files={"index.html": _NGINX_INDEX.encode(), "50x.html": _NGINX_50X.encode()},
        read_only=False,
    )
    # The image's writable directories, empty: /var/log/nginx (a user's nginx.conf often
    # logs there), /var/cache/nginx (the image's temp paths) and /var/lib/nginx (the
    # temp paths compiled into Debian's nginx, which runs here).
    writable = tuple(VolumePlan(mount_path=d, files={}, read_only=False)
                     for d in ("/var/log/nginx", "/var/cache/nginx", "/var/lib/nginx"))
    # -e: nginx opens its compiled-in error log before reading the config; send it to
    # stderr.
    argv = ("nginx", "-e", "stderr", "-g", "daemon off;")
    return ImageDefaults(argv=argv, env={}, volumes=(etc, html, *writable))


_KNOWN_IMAGES: tuple[KnownImage, ...] = (
    KnownImage(("*/examples-helloworld-v1",), "sailmesh.apps.helloworld v1 on :5000",
               _helloworld("v1"), "helloworld"),
    KnownImage(("*/examples-helloworld-v2",), "sailmesh.apps.helloworld v2 on :5000",
               _helloworld("v2"), "helloworld"),
    KnownImage(("*istio/examples-bookinfo-productpage-v1",),
               "sailmesh.apps.bookinfo productpage on :9080", _bookinfo("productpage"), "bookinfo"),
    KnownImage(("*istio/examples-bookinfo-details-v1",),
               "sailmesh.apps.bookinfo details on :9080", _bookinfo("details"), "bookinfo"),
    KnownImage(("*istio/examples-bookinfo-ratings-v1",),
               "sailmesh.apps.bookinfo ratings on :9080", _bookinfo("ratings"), "bookinfo"),
    KnownImage(("*istio/examples-bookinfo-reviews-v1",),
               "sailmesh.apps.bookinfo reviews v1 (no ratings) on :9080", _bookinfo("reviews"),
               "bookinfo"),
    KnownImage(("*istio/examples-bookinfo-reviews-v2",),
               "sailmesh.apps.bookinfo reviews v2 (black stars) on :9080",
               _bookinfo("reviews", ENABLE_RATINGS="true", STAR_COLOR="black"), "bookinfo"),
    KnownImage(("*istio/examples-bookinfo-reviews-v3",),
               "sailmesh.apps.bookinfo reviews v3 (red stars) on :9080",
               _bookinfo("reviews", ENABLE_RATINGS="true", STAR_COLOR="red"), "bookinfo"),
    KnownImage(("nginx", "library/nginx", "docker.io/library/nginx*"), "the system nginx", _nginx,
               "nginx"),
    KnownImage(("*mccutchen/go-httpbin",), "sailmesh.apps.go_httpbin (gunicorn) on :8080",
               _httpbin(8080, "sailmesh.apps.go_httpbin:app"), "httpbin"),
    KnownImage(("*kennethreitz/httpbin", "*kong/httpbin"), "httpbin (gunicorn) on :80",
               _httpbin(80), "httpbin"),
    KnownImage(("*istio/tcp-echo-server",), "sailmesh.apps.tcp_echo (ports and prefix from args)",
               _tcp_echo, "tcp-echo"),
    KnownImage(("curlimages/curl*", "*curl*", "*sleep*", "busybox*"), "sleep infinity", _sleep,
               "curl/sleep"),
)


def split_image(image: str) -> tuple[str, str]:
    """(repository, full name without digest): `docker.io/library/nginx:1.25@sha256:…`
    → (`docker.io/library/nginx`, `docker.io/library/nginx:1.25`)."""
    name = image.split("@", 1)[0]
    repo = name
    colon = name.rfind(":")
    if colon > name.rfind("/"):  # a tag, not a registry port
        repo = name[:colon]
    return repo, name


@functools.lru_cache(maxsize=1024)  # every sync asks again for every container's image
def known_image(image: str) -> KnownImage | None:
    repo, name = split_image(image)
    for known in _KNOWN_IMAGES:
        if any(fnmatch.fnmatchcase(x, p) for p in known.patterns for x in (repo, name)):
            return known
    return None


def known_images_summary() -> str:
    """The local equivalents in a few words: `helloworld, bookinfo, …`."""
    return ", ".join(dict.fromkeys(k.family for k in _KNOWN_IMAGES))


def _env(container: Container, where: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for var in container.env:
        if var.value_from is not None:
            raise ContainerConfigError(
                f"{where}: env {var.name} uses valueFrom, which the local runtime does not"
                " support yet; give a literal value",
                container=container.name,
            )
        env[var.name] = var.value or ""
    return env


def resolve_container(container: Container, pod_name: str, namespace: str,
                      pod_security: PodSecurityContext | None = None) -> ContainerPlan:
    """The local command, environment, image content and credentials for one container."""
    where = f"container {container.name} of pod {namespace}/{pod_name}"
    security = process_security(container, pod_security, where)
    image = container.image or ""
    known = known_image(image) if image else None
    defaults = known.defaults() if known else None
    if container.command:
        argv = (*container.command, *(container.args or ()))
    elif defaults is not None and defaults.entrypoint:
        argv = (*defaults.entrypoint, *(container.args or defaults.argv))
    elif container.args:
        argv = tuple(container.args)
    elif defaults is not None:
        argv = defaults.argv
    else:
        raise ImageError(
            f"{where}: image {image!r} has no local equivalent on this machine and the"
            " container gives no command; give the container a `command` to run here, or"
            f" use an image that has a local equivalent ({known_images_summary()}; sailmesh's"
            " docs/images.md lists their names)",
            container=container.name, image=image,
        )
    executable = find_executable(argv[0])
    if executable is None:
        raise ImageError(
            f"{where}: command {argv[0]!r} (image {image!r}) was not found in"
            f" {os.path.dirname(sys.executable)} or on PATH; install it on this machine",
            container=container.name, image=image, reason="RunContainerError",
        )
    env = {"HOSTNAME": pod_name, **(defaults.env if defaults else {}), **_env(container, where)}
    return ContainerPlan(
        name=container.name,
        argv=(executable, *argv[1:]),
        env=env,
        workdir=container.working_dir,
        image_volumes=defaults.volumes if defaults else (),
        # Shallow: its fields are immutable (asdict's deep copy was a third of the time).
        **{f.name: getattr(security, f.name) for f in fields(security)},
    )

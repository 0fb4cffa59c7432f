"""Local stand-ins for Istio's Bookinfo sample (`istio/examples-bookinfo-*` images).

One program, four roles, each on :9080 like the real images:

- ``productpage`` (the Python/Flask app): `/productpage` renders the book page (title
  "Simple Bookstore App", details, reviews with stars) from details and reviews;
  `/api/v1/products`, `/api/v1/products/<id>`, `…/reviews`, `…/ratings` answer JSON;
  `/login` (POST `username=…`) keeps the user in a signed `session` cookie and `/logout`
  drops it; while signed in, calls to reviews carry `end-user: <user>` — the header
  Istio's request-routing task matches on. `/health` answers "Product page is healthy".
- ``details`` (the Ruby app): `/details/<id>` → the book's facts; `/health`.
- ``reviews`` (the Java app): `/reviews/<id>` → two reviews; with ENABLE_RATINGS=true it
  calls ratings and adds stars of STAR_COLOR (v2 black, v3 red); ratings failing gives
  "Ratings service is currently unavailable". Timeout to ratings 10 s (black) / 2.5 s.
- ``ratings`` (the Node app): `/ratings/<id>` → Reviewer1 5 stars, Reviewer2 4; `/health`.

Trace headers (x-request-id, b3, W3C traceparent …) and user-agent/cookie/authorization
are propagated to the next call as the real apps do, so Envoy's traces and header-based
routes see them. Standard library only.

Must not know about the runtime that starts it or about Istio.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import html
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PORT = 9080

# The headers the real apps forward (productpage.py getForwardHeaders, reviews'
# headers_to_propagate).
FORWARDED_HEADERS = (
    "x-request-id", "x-ot-span-context", "x-datadog-trace-id", "x-datadog-parent-id",
    "x-datadog-sampling-priority", "traceparent", "tracestate", "x-cloud-trace-context",
    "grpc-trace-bin", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled",
    "x-b3-flags", "b3", "sw8", "user-agent", "cookie", "authorization", "jwt", "end-user",
)

PRODUCTS = [{
    "id": 0,
    "title": "The Comedy of Errors",
    "descriptionHtml": '<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">'
    "Wikipedia Summary</a>: The Comedy of Errors is one of <b>William Shakespeare's</b>"
    " early plays. It is his shortest and one of his most farcical comedies, with a major"
    " part of the humour coming from slapstick and mistaken identity, in addition to puns"
    " and word play.",
}]

DETAILS = {"author": "William Shakespeare", "year": 1595, "type": "paperback", "pages": 200,
           "publisher": "PublisherA", "language": "English", "ISBN-10": "1234567890",
           "ISBN-13": "123-1234567890"}

REVIEWS = (
    ("Reviewer1", "An extremely entertaining play by Shakespeare. The slapstick humour is"
     " refreshing!"),
    ("Reviewer2", "Absolutely fun and entertaining. The play lacks thematic depth when"
     " compared to other plays by Shakespeare."),
)
RATINGS = {"Reviewer1": 5, "Reviewer2": 4}

# The session cookie is signed with a key fixed in the image, as the real productpage's
# Flask secret is: a cookie from one replica is good at every other.
_SESSION_KEY = b"sailmesh-bookinfo-productpage"

Reply = tuple[int, str, bytes, Mapping[str, str]]


def _json(status: int, body: Any) -> Reply:
    return status, "application/json", json.dumps(body).encode(), {}


def sign_session(user: str) -> str:
    payload = base64.urlsafe_b64encode(json.dumps({"user": user}).encode()).rstrip(b"=")
    mac = hmac.new(_SESSION_KEY, payload, hashlib.sha256).digest()
    return f"{payload.decode()}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def session_user(cookie_header: str | None) -> str:
    """The signed-in user of a `session` cookie, or "" (bad signatures are ignored)."""
    for part in (cookie_header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name != "session" or "." not in value:
            continue
        payload, _, mac = value.partition(".")
        want = base64.urlsafe_b64encode(
            hmac.new(_SESSION_KEY, payload.encode(), hashlib.sha256).digest()).rstrip(b"=")
        if not hmac.compare_digest(want, mac.encode()):
            continue
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except ValueError:
            continue
        user = data.get("user") if isinstance(data, dict) else None
        if isinstance(user, str):
            return user
    return ""


def forward_headers(incoming: Mapping[str, str], user: str = "") -> dict[str, str]:
    headers = {h: incoming[h] for h in FORWARDED_HEADERS if h in incoming}
    if user:
        headers["end-user"] = user
    return headers


def fetch_json(url: str, headers: Mapping[str, str], timeout: float) -> tuple[int, Any]:
    """(status, parsed body or None); 0 when no HTTP answer came at all."""
    req = urllib.request.Request(url, headers=dict(headers))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return res.status, json.loads(res.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (OSError, ValueError):
        return 0, None


def _service(name: str) -> str:
    host = os.environ.get(f"{name.upper()}_HOSTNAME", name)
    domain = os.environ.get("SERVICES_DOMAIN")
    return f"http://{host}{'.' + domain if domain else ''}:9080"


def _product_id(raw: str) -> int | None:
    return int(raw) if re.fullmatch(r"-?\d+", raw) else None


# --- details, ratings, reviews -----------------------------------------------------------

def details_app(path: str, _headers: Mapping[str, str]) -> Reply:
    if path == "/health":
        return _json(200, {"status": "Details is healthy"})
    m = re.fullmatch(r"/details/([^/]*)", path)
    if not m:
        return _json(404, {"error": "Not found"})
    pid = _product_id(m.group(1))
    if pid is None:
        return _json(400, {"error": "please provide numeric product id"})
    return _json(200, {"id": pid, **DETAILS})


def ratings_app(path: str, _headers: Mapping[str, str]) -> Reply:
    if path == "/health":
        return _json(200, {"status": "Ratings is healthy"})
    m = re.fullmatch(r"/ratings/([^/]*)", path)
    if not m:
        return _json(404, {"error": "Not found"})
    pid = _product_id(m.group(1))
    if pid is None:
        return _json(400, {"error": "please provide numeric product ID"})
    return _json(200, {"id": pid, "ratings": RATINGS})


def reviews_app(path: str, headers: Mapping[str, str]) -> Reply:
    if path == "/health":
        return _json(200, {"status": "Reviews is healthy"})
    m = re.fullmatch(r"/reviews/(-?\d+)", path)
    if not m:
        return _json(404, {"error": "Not found"})
    enabled = os.environ.get("ENABLE_RATINGS", "").lower() == "true"
    color = os.environ.get("STAR_COLOR", "black")
    stars: dict[str, int] = {}
    if enabled:
        status, body = fetch_json(f"{_service('ratings')}/ratings/{m.group(1)}",
                                  forward_headers(headers), 10.0 if color == "black" else 2.5)
        if status == 200 and isinstance(body, dict) and isinstance(body.get("ratings"), dict):
            stars = {k: v for k, v in body["ratings"].items() if isinstance(v, int)}
    reviews = []
    for reviewer, text in REVIEWS:
        review: dict[str, Any] = {"reviewer": reviewer, "text": text}
        if enabled:
            review["rating"] = ({"stars": stars[reviewer], "color": color} if reviewer in stars
                                else {"error": "Ratings service is currently unavailable"})
        reviews.append(review)
    return _json(200, {"id": m.group(1), "podname": os.environ.get("HOSTNAME", ""),
                       "clustername": "null", "reviews": reviews})


# --- productpage ---------------------------------------------------------------------------

_DETAILS_ERROR = "Sorry, product details are currently unavailable for this book."
_REVIEWS_ERROR = "Sorry, product reviews are currently unavailable for this book."
_RATINGS_ERROR = "Sorry, product ratings are currently unavailable for this book."


def get_details(pid: str, headers: Mapping[str, str]) -> tuple[int, Any]:
    status, body = fetch_json(f"{_service('details')}/details/{pid}", headers, 3.0)
    return (200, body) if status == 200 else (status or 500, {"error": _DETAILS_ERROR})


def get_reviews(pid: str, headers: Mapping[str, str]) -> tuple[int, Any]:
    # The real app tries twice (kept on purpose for Istio's fault-injection task).
    status = 0
    for _ in range(2):
        status, body = fetch_json(f"{_service('reviews')}/reviews/{pid}", headers, 3.0)
        if status == 200:
            return 200, body
    return status or 500, {"error": _REVIEWS_ERROR}


def get_ratings(pid: str, headers: Mapping[str, str]) -> tuple[int, Any]:
    status, body = fetch_json(f"{_service('ratings')}/ratings/{pid}", headers, 3.0)
    return (200, body) if status == 200 else (status or 500, {"error": _RATINGS_ERROR})


def _stars_html(rating: Mapping[str, Any]) -> str:
    if isinstance(rating.get("stars"), int):
        n = max(0, min(5, rating["stars"]))
        full = '\n          <span class="glyphicon glyphicon-star"></span>' * n
        empty = '\n          <span class="glyphicon glyphicon-star-empty"></span>' * (5 - n)
        return (f'\n        <font color="{html.escape(str(rating.get("color", "black")))}">'
                f"{full}{empty}\n        </font>")
    if rating.get("error"):
        return f"\n        <p><i>{html.escape(str(rating['error']))}</i></p>"
    return ""


def render_productpage(user: str, details: tuple[int, Any], reviews: tuple[int, Any]) -> str:
    product = PRODUCTS[0]
    if user:
        nav = ('<p class="navbar-text navbar-right"><i class="glyphicon glyphicon-user"></i>'
               f' <span>{html.escape(user)} ( <a href="logout">sign out</a> )</span></p>')
    else:
        nav = ('<form method="post" action="login" name="login_form" class="navbar-form'
               ' navbar-right"><input type="text" name="username" placeholder="User Name">'
               ' <input type="password" name="passwd" placeholder="Password">'
               ' <button type="submit">Sign in</button></form>')
    d_status, d = details
    if d_status == 200:
        rows = "".join(f"\n        <dt>{label}:</dt>{html.escape(str(d.get(key, '')))}"
                       for label, key in (("Type", "type"), ("Pages", "pages"),
                                          ("Publisher", "publisher"), ("Language", "language"),
                                          ("ISBN-10", "ISBN-10"), ("ISBN-13", "ISBN-13")))
        details_html = ('<h4 class="text-center text-primary">Book Details</h4>'
                        f"\n      <dl>{rows}\n      </dl>")
    else:
        details_html = ('<h4 class="text-center text-primary">Error fetching product details!</h4>'
                        f"\n      <p>{html.escape(d['error'])}</p>")
    r_status, r = reviews
    if r_status == 200:
        quotes = "".join(
            f"\n      <blockquote>\n        <p>{html.escape(str(rv.get('text', '')))}</p>"
            f"\n        <small>{html.escape(str(rv.get('reviewer', '')))}</small>"
            f"{_stars_html(rv.get('rating') or {})}\n      </blockquote>"
            for rv in (r.get("reviews") or []) if isinstance(rv, dict))
        reviews_html = f'<h4 class="text-center text-primary">Book Reviews</h4>{quotes}'
    else:
        reviews_html = ('<h4 class="text-center text-primary">Error fetching product reviews!</h4>'
                        f"\n      <p>{html.escape(r['error'])}</p>")
    return f"""<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>Simple Bookstore App</title>
</head>
<body>
<nav class="navbar navbar-inverse navbar-static-top">
  <div class="container">
    <a class="navbar-brand" href="#">BookInfo Sample</a>
    {nav}
  </div>
</nav>
<div class="container-fluid">
  <div class="row">
    <div class="col-md-12">
      <h3 class="text-center text-primary">{html.escape(product['title'])}</h3>
      <p>Summary: {product['descriptionHtml']}</p>
    </div>
  </div>
  <div class="row">
    <div class="col-md-6">
      {details_html}
    </div>
    <div class="col-md-6">
      {reviews_html}
    </div>
  </div>
</div>
</body>
</html>
"""


_INDEX = """<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Simple Bookstore App</title></head>
<body>
<h3>Hello! This is a simple bookstore application consisting of three services as shown below</h3>
<table class="table table-condensed table-bordered table-hover">
<tr><th>name</th><td>http://details:9080</td></tr><tr><th>endpoint</th><td>details</td></tr>
<tr><th>children</th><td>details, reviews (ratings)</td></tr>
</table>
<p>Click on one of the links below to auto generate a request to the backend as a real user or a tester</p>
<p><a href="/productpage?u=normal">Normal user</a></p>
<p><a href="/productpage?u=test">Test user</a></p>
</body>
</html>
"""


def productpage_app(path: str, headers: Mapping[str, str]) -> Reply:
    user = session_user(headers.get("cookie"))
    fwd = forward_headers(headers, user)
    if path in ("/", "/index.html"):
        return 200, "text/html; charset=utf-8", _INDEX.encode(), {}
    if path == "/health":
        return 200, "text/html; charset=utf-8", b"Product page is healthy", {}
    if path == "/productpage":
        page = render_productpage(user, get_details("0", fwd), get_reviews("0", fwd))
        return 200, "text/html; charset=utf-8", page.encode(), {}
    if path == "/logout":
        return 302, "text/html; charset=utf-8", b"", {
            "Location": headers.get("referer") or "/productpage",
            "Set-Cookie": "session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/"}
    if path == "/api/v1/products":
        return _json(200, PRODUCTS)
    m = re.fullmatch(r"/api/v1/products/([^/]+)(/reviews|/ratings)?", path)
    if m:
        getter: Callable[[str, Mapping[str, str]], tuple[int, Any]] = {
            None: get_details, "/reviews": get_reviews, "/ratings": get_ratings}[m.group(2)]
        return _json(*getter(m.group(1), fwd))
    return 404, "text/html; charset=utf-8", b"Not Found", {}


def productpage_login(form: str, headers: Mapping[str, str]) -> Reply:
    user = urllib.parse.parse_qs(form).get("username", [""])[0]
    return 302, "text/html; charset=utf-8", b"", {
        "Location": headers.get("referer") or "/productpage",
        "Set-Cookie": f"session={sign_session(user)}; HttpOnly; Path=/"}


ROLES: dict[str, Callable[[str, Mapping[str, str]], Reply]] = {
    "productpage": productpage_app, "details": details_app,
    "reviews": reviews_app, "ratings": ratings_app,
}


class BookinfoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # see sailmesh.apps.helloworld
    role = "productpage"

    def _headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def _send(self, reply: Reply, head_only: bool = False) -> None:
        status, ctype, body, extra = reply
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(ROLES[self.role](self.path.split("?", 1)[0], self._headers()))

    def do_HEAD(self) -> None:
        self._send(ROLES[self.role](self.path.split("?", 1)[0], self._headers()), head_only=True)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = self.rfile.read(min(length, 65536)).decode("utf-8", "replace")
        if self.role == "productpage" and self.path.split("?", 1)[0] == "/login":
            self._send(productpage_login(form, self._headers()))
        else:
            self._send(_json(405, {"error": "Method Not Allowed"}))


class BookinfoServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Bookinfo sample service")
    parser.add_argument("role", choices=sorted(ROLES))
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--host", default="0.0.0.0")
    args = parser.parse_args(argv)
    handler = type("Handler", (BookinfoHandler,), {"role": args.role})
    server = BookinfoServer((args.host, args.port), handler)
    print(f"bookinfo {args.role} listening on {args.host}:{args.port}", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The verdict on one hop: given what the client side sends (`ClientSide`) and what one
server endpoint accepts (`ServerSide`), whether the connection works and, if not, the
error a user would see (curl's or Envoy's wording). Used by `explain` for every endpoint.

The layer model it applies (Istio's behaviour, see reference/istio-tls-to-envoy.md): the
application's own TLS, then what the client proxy wraps around it (mesh mTLS, TLS
origination or nothing; auto mTLS only towards a sidecar that does not DISABLE), then the
chain the server sidecar picks (`model.inbound.pick`), then what the application or
external server speaks. Must not know: resolving the ends, policy lookups, IO, output.
"""

from __future__ import annotations

from sailmesh.analysis.hop import CLIENT_APP_ALPN, ClientSide, ServerSide
from sailmesh.model.inbound import Arrival, mesh_client_alpn, pick


def judge(client: ClientSide, server: ServerSide) -> ServerSide:
    """Fill `sends`, `works` and `error` of one endpoint: the TLS on the way, then whether
    the client proxy has an endpoint to send it to at all."""
    _judge_tls(client, server)
    if client.left_out is not None:
        return _fail(server, client.left_out, client.left_out_error or "503 (response flag "
                     "NC: the client proxy has no cluster for it)")
    if server.no_endpoints is None:
        return server
    if not server.works:
        server.reasons.append(server.no_endpoints)
        return server
    host = server.target.removeprefix("external ")
    return _fail(server, server.no_endpoints, "503 no healthy upstream (response flag UH)"
                 if client.proxy else f"curl: (6) Could not resolve host: {host}")


def _judge_tls(client: ClientSide, server: ServerSide) -> ServerSide:
    wrap = {"ISTIO_MUTUAL": "mTLS", "SIMPLE": "TLS", "MUTUAL": "TLS"}.get(client.mode, "")
    if client.mode == "AUTO":
        wrap = ("mTLS" if server.sidecar and server.mode != "DISABLE" and not server.gateway
                else "")
        if not wrap:
            server.reasons.append("auto mTLS: " + (
                "a gateway endpoint has no tlsMode=istio label" if server.gateway else
                "no sidecar" if not server.sidecar else "its PeerAuthentication is DISABLE")
                + ", so the client sends plaintext")
    app = "TLS" if client.app_tls else "plaintext"
    server.sends = {"mTLS": f"mesh mTLS (carrying {app})", "TLS": f"TLS originated by the "
                    f"client proxy (carrying {app})", "": app}[wrap]
    proxied = client.proxy
    reset = ("503 upstream connect error or disconnect/reset before headers. reset reason: "
             "connection termination" if proxied else
             "curl: (56) Recv failure: Connection reset by peer")
    if server.refuses:
        return _fail(server, server.refuses, reset)
    wrong_version = ("503 upstream connect error or disconnect/reset before headers. "
                     "transport failure reason: TLS_error: WRONG_VERSION_NUMBER" if proxied
                     else "curl: (35) error:0A00010B:SSL routines::wrong version number")
    if wrap == "TLS" and client.app_tls:
        return _fail(server, "double TLS: the application already sends TLS and the "
                     f"DestinationRule ({client.policy}) originates TLS again", wrong_version)
    # What the server side's sidecar does with it: the chain it picks (model.inbound).
    if server.sidecar and server.chains:
        arrival = Arrival(tls=bool(wrap) or client.app_tls,
                          alpn=(mesh_client_alpn(client.http) if wrap == "mTLS" else
                                () if wrap else CLIENT_APP_ALPN if client.app_tls else ()),
                          http=client.http)
        picked = pick(server.chains, server.port, arrival)
        server.chain = ("none" if picked is None else picked.option.l7
                        + (" (mTLS)" if picked.option.mtls else ""))
        if picked is None:
            return _fail(server, f"no chain of the sidecar on port {server.port} takes "
                         f"{server.sends} ({server.mode}): it closes the connection", reset)
        if picked.option.mtls and wrap != "mTLS":
            if wrap == "TLS":
                return _fail(server, "the client proxy originates TLS verified against its "
                             "own CA, but the server's sidecar answers with its mesh "
                             "certificate", "503 upstream connect error or disconnect/reset "
                             "before headers. transport failure reason: TLS_error: "
                             "CERTIFICATE_VERIFY_FAILED")
            return _fail(server, f"the sidecar's mTLS chain on port {server.port} takes the "
                         "application's own TLS: it answers with the mesh certificate and "
                         "requires a mesh client certificate",
                         "curl: (60) SSL certificate problem: unable to get local issuer "
                         "certificate (with -k: alert certificate required)")
        if wrap == "mTLS" and not picked.option.mtls:
            return _fail(server, "the client sends mesh mTLS, the sidecar's chain on port "
                         f"{server.port} does not terminate it ({server.mode}) and the "
                         "application cannot", wrong_version)
        arrives = "TLS" if wrap == "TLS" else app  # mesh mTLS is terminated here
        if picked.option.l7 == "HTTP" and arrives == "TLS":
            return _fail(server, f"port {server.port} is an HTTP port: the sidecar parses "
                         "the TLS it receives as HTTP", wrong_version)
    elif server.sidecar:  # a gateway's server (ISTIO_MUTUAL: STRICT, plaintext: DISABLE)
        if wrap == "TLS" and server.mode != "DISABLE":
            return _fail(server, "the client proxy originates TLS verified against its own "
                         "CA, but the gateway answers with its mesh certificate",
                         "503 upstream connect error or disconnect/reset before headers. "
                         "transport failure reason: TLS_error: CERTIFICATE_VERIFY_FAILED")
        if server.mode == "STRICT" and wrap != "mTLS":
            return _fail(server, "ISTIO_MUTUAL accepts only mesh mTLS, the client sends "
                         f"{server.sends}", reset)
        if wrap == "mTLS" and server.mode == "DISABLE":
            return _fail(server, "the client sends mesh mTLS, the gateway's plaintext server "
                         "does not terminate it", wrong_version)
        arrives = "TLS" if wrap == "TLS" else app
    elif wrap == "mTLS":
        what = "the external server" if server.policy == "external" else "the application"
        return _fail(server, f"mesh mTLS towards a destination without a sidecar: {what} "
                     "cannot terminate it (and has no mesh certificate)", wrong_version
                     if server.app_tls is False else reset)
    else:
        arrives = "TLS" if wrap == "TLS" else app
    expects = "TLS" if server.app_tls else "plaintext"
    if arrives != expects:
        if expects == "TLS":
            return _fail(server, f"{server.target} expects TLS on port {server.port} but "
                         f"receives {arrives}", "400 Bad Request (plain HTTP sent to a TLS "
                         "port) or " + reset)
        return _fail(server, f"{server.target} speaks plaintext on port {server.port} but "
                     f"receives {arrives}", wrong_version)
    server.works = True
    if wrap == "mTLS":
        server.reasons.append("mesh mTLS, terminated by the gateway" if server.gateway else
                              "mesh mTLS, terminated by the server's sidecar")
    elif wrap == "TLS":
        server.reasons.append("TLS originated by the client proxy")
    else:
        server.reasons.append(f"{app} end to end from the application")
    return server


def _fail(server: ServerSide, why: str, error: str) -> ServerSide:
    server.works = False
    server.reasons.append(why)
    server.error = error
    return server

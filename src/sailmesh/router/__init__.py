"""OpenShift's router: admitted Routes (route.openshift.io/v1) → an HAProxy configuration
with the semantics of OpenShift's haproxy template (edge / passthrough / reencrypt
termination, insecure-traffic policies, weighted Services), and the router's own
certificates.

Which Routes are admitted (with their status) and where their traffic goes are rules the
analyzers need too, so they live in `sailmesh.model.route_admission` and
`sailmesh.model.route_backends`. Pure apart from `pki`, which keeps its certificates in a
directory it is given. Must not know Istio: a gateway behind a Route is just a Service.
"""

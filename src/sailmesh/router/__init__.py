"""OpenShift's router: Routes (route.openshift.io/v1) → an HAProxy configuration with
OpenShift's semantics (admission and status, edge / passthrough / reencrypt termination,
insecure-traffic policies, weighted Services), and the router's own certificates.

Pure apart from `pki`, which keeps its certificates in a directory it is given. Must not
know Istio: a gateway behind a Route is just a Service with endpoints.
"""

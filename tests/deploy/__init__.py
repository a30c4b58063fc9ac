"""Checks of the deployment files: docker-compose.yml, the Helm chart and the Dockerfile.

No Docker engine or cluster is needed: the compose file is validated against the Compose
specification's JSON Schema (vendored in schemas/), the chart is rendered by Helm's own engine
(helm-python-sdk) and every manifest is validated against the Kubernetes schemas
(kubernetes-validate) or, for custom resources, the vendored CRD schemas.
"""

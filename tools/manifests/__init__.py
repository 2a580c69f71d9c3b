"""KubeRay manifest generation: ``k8s/kuberay.yaml`` from configs/serve.yaml and k8s/values.yaml.

    python -m tools.manifests --write           # regenerate k8s/kuberay.yaml (make manifests)
    python -m tools.manifests --check           # exit 1 if k8s/kuberay.yaml is out of date
    python -m tools.manifests --serve-config P  # the pod's Serve config, to P (docker/Dockerfile)
    python -m tools.manifests                   # print the manifest

Modules: ``sizing`` (the worker group's bounds, a pure bin packer), ``serve_config`` (the pod's edit of
configs/serve.yaml), ``values`` (k8s/values.yaml), ``render`` (k8s/kuberay.yaml.tmpl filled in), ``cli``.
"""

"""configs/serve.yaml as it runs in a pod or container: the one edit, ``http_options.host: 0.0.0.0``.

Used for the manifest's ``serveConfigV2`` and, while the image is built (docker/Dockerfile), for
``configs/serve.pod.yaml``. Needs only PyYAML: no repository files besides the text it is given.
"""

from __future__ import annotations

import copy
import re

import yaml

# In a pod the Serve proxy must listen on the pod IP (KubeRay's serve Service and probes reach it there), not
# on 127.0.0.1 as configs/serve.yaml does for a laptop. This is the only change made to configs/serve.yaml.
POD_HTTP_HOST = "0.0.0.0"


def pod_serve_config_text(serve_text: str) -> str:
    """configs/serve.yaml as it must run in a pod: ``http_options.host`` is ``0.0.0.0``; nothing else changes.

    The text (comments included) is kept; only the ``host:`` line under ``http_options`` is rewritten (or
    added). Raises ``ValueError`` if the result parses to anything but the original with that key changed.
    """
    lines = serve_text.splitlines(keepends=True)
    note = "# pod/container: listen on every interface (the one change from configs/serve.yaml)"
    start = next((i for i, line in enumerate(lines) if re.match(r"http_options:\s*(#.*)?$", line)), None)
    if start is None:
        suffix = "" if serve_text.endswith("\n") or not serve_text else "\n"
        out = f"{serve_text}{suffix}\nhttp_options:\n  host: {POD_HTTP_HOST}  {note}\n"
    else:
        host_at = None
        for i in range(start + 1, len(lines)):
            line = lines[i]
            if line.strip() and not line[0].isspace():
                break  # the next top-level key: http_options has no host
            if re.match(r"\s+host:", line):
                host_at = i
                break
        if host_at is None:
            lines.insert(start + 1, f"  host: {POD_HTTP_HOST}  {note}\n")
        else:
            indent = lines[host_at][: len(lines[host_at]) - len(lines[host_at].lstrip())]
            lines[host_at] = f"{indent}host: {POD_HTTP_HOST}  {note}\n"
        out = "".join(lines)
    expected = copy.deepcopy(yaml.safe_load(serve_text)) or {}
    expected.setdefault("http_options", {})["host"] = POD_HTTP_HOST
    if yaml.safe_load(out) != expected:
        raise ValueError(
            "could not rewrite http_options.host in configs/serve.yaml without changing anything else"
        )
    return out

"""Where the Kubernetes API is and who we are there: a kubeconfig file or the pod's service account.

`load_config(kubeconfig=path, context=name)` reads a kubeconfig (its current context unless one is
named); without a path it uses the in-cluster service account (token, CA and namespace under
/var/run/secrets/kubernetes.io/serviceaccount, server from KUBERNETES_SERVICE_HOST/PORT), and
failing that $KUBECONFIG or ~/.kube/config, like kubectl. The token file is re-read when the
server rejects it, so rotated service-account tokens keep working.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from lightkube.config.kubeconfig import KubeConfig, SingleConfig
from lightkube.config.models import Cluster, User
from lightkube.core.exceptions import ConfigError as LightkubeConfigError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_KUBECONFIG = Path("~/.kube/config")


class ConfigError(Exception):
    """No usable API configuration; the message says what is missing."""


def in_cluster_config(*, service_account: Path = SERVICE_ACCOUNT,
                      environ: Mapping[str, str]) -> SingleConfig | None:
    """The pod's own configuration, or None when not running in a pod."""
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    token_file = service_account / "token"
    if not host or not port or not token_file.is_file():
        return None
    host = f"[{host}]" if ":" in host else host
    try:
        namespace = (service_account / "namespace").read_text().strip() or None
        token = token_file.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the service account in {service_account}: {exc}") from exc
    config = KubeConfig.from_one(
        cluster=Cluster(server=f"https://{host}:{port}",
                        certificate_auth=str(service_account / "ca.crt")),
        user=User(token=token, token_file=str(token_file)), namespace=namespace)
    return config.get()


def load_config(*, kubeconfig: Path | None = None, context: str | None = None,
                service_account: Path = SERVICE_ACCOUNT,
                environ: Mapping[str, str] | None = None) -> SingleConfig:
    """The API configuration to use (see the module docstring for the order)."""
    env = os.environ if environ is None else environ
    if kubeconfig is None and context is None:
        found = in_cluster_config(service_account=service_account, environ=env)
        if found is not None:
            return found
    path = kubeconfig or Path(env.get("KUBECONFIG") or DEFAULT_KUBECONFIG).expanduser()
    try:
        config = KubeConfig.from_file(path).get(context_name=context)
    except LightkubeConfigError as exc:
        raise ConfigError(f"kubeconfig {path}: {exc}") from exc
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"kubeconfig {path} is not usable: {exc}") from exc
    if config is None:
        raise ConfigError(f"kubeconfig {path} has no current context: name one with --context")
    return config

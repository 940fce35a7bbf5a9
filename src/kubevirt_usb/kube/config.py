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

import yaml
from lightkube.config.kubeconfig import KubeConfig, SingleConfig
from lightkube.config.models import Cluster, User

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
    named = [p for p in (env.get("KUBECONFIG") or "").split(os.pathsep) if p]
    if kubeconfig is None and len(named) > 1:
        raise ConfigError(f"$KUBECONFIG names several files ({env['KUBECONFIG']}), which are not "
                          "merged: set it to one file, or pass --kubeconfig")
    path = kubeconfig or Path(named[0] if named else DEFAULT_KUBECONFIG).expanduser()
    return select_context(read_kubeconfig(path), context=context, path=path)


def read_kubeconfig(path: Path) -> KubeConfig:
    """The kubeconfig file at `path`; ConfigError saying what is wrong with it otherwise."""
    if path.is_dir():
        raise ConfigError(f"kubeconfig {path} is a directory: name the kubeconfig file in it")
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise ConfigError(f"kubeconfig {path} not found") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"kubeconfig {path} is not a text file") from exc
    except OSError as exc:
        raise ConfigError(f"kubeconfig {path} cannot be read: {exc.strerror or exc}") from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"kubeconfig {path} is not valid YAML{where}: "
                          f"{' '.join(str(problem).split())}") from exc
    problem = _shape_problem(document)
    if problem is not None:
        raise ConfigError(f"kubeconfig {path} is not a kubeconfig: {problem}")
    try:
        return KubeConfig.from_dict(document, fname=path)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"kubeconfig {path} is not usable: {exc}") from exc


def _shape_problem(document: object) -> str | None:
    """What keeps `document` from being a kubeconfig, or None."""
    if not isinstance(document, dict):
        return "expected a YAML mapping with clusters, contexts and users"
    for section, required in (("clusters", True), ("contexts", True), ("users", False)):
        entries = document.get(section)
        if entries is None and not required:
            continue
        if not isinstance(entries, list):
            return f"no list of {section}"
        key = section[:-1]
        for entry in entries:
            if not (isinstance(entry, dict) and isinstance(entry.get("name"), str)
                    and isinstance(entry.get(key), dict)):
                return f"every entry of {section} needs a name and a {key}"
    return None


def select_context(config: KubeConfig, *, context: str | None, path: Path) -> SingleConfig:
    """The context `context` (else the current one) of `config`, read from `path`."""
    name = context if context is not None else config.current_context
    known = ", ".join(sorted(config.contexts)) or "none"
    if not name:
        raise ConfigError(f"kubeconfig {path} has no current-context: name one with --context "
                          f"(contexts: {known})")
    chosen = config.contexts.get(name)
    if chosen is None:
        raise ConfigError(f"kubeconfig {path} has no context {name!r} (contexts: {known})")
    if chosen.cluster not in config.clusters:
        raise ConfigError(f"kubeconfig {path}: context {name!r} names cluster "
                          f"{chosen.cluster!r}, which is not in the file")
    if chosen.user and chosen.user not in config.users:
        raise ConfigError(f"kubeconfig {path}: context {name!r} names user {chosen.user!r}, "
                          "which is not in the file")
    found = config.get(context_name=name)
    assert found is not None  # a name was given, so lightkube never returns its default
    # a context without a user is anonymous, as for kubectl (lightkube insists on a user)
    return found if found.user is not None else found._replace(user=User())


def tls_problem(config: SingleConfig, exc: BaseException) -> ConfigError:
    """Why the certificates `config` names cannot be used (naming a file that is missing)."""
    user = config.user or User()
    named = [("certificate-authority", config.cluster.certificate_auth),
             ("client-certificate", user.client_cert), ("client-key", user.client_key)]
    for key, name in named:
        if name and not Path(config.abs_file(name)).is_file():
            return ConfigError(f"the kubeconfig's {key} {config.abs_file(name)} does not exist")
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return ConfigError(f"the kubeconfig's certificates cannot be used: {detail}")

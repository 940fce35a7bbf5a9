"""Bad input gets the codes and Status reasons a real server gives (400/404/405/409/415/422), and
never breaks the server for anyone else."""

from __future__ import annotations

import pytest

from tests.contract.conftest import Cluster
from tests.contract.support import MERGE, ContractCRD, status_of


def test_malformed_json_is_400(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        response = http.post(f"/api/v1/namespaces/{namespace}/configmaps",
                             content=b'{"metadata": {"name": ',
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert status_of(response)["reason"] == "BadRequest"


def test_malformed_yaml_is_400(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        response = http.post(f"/api/v1/namespaces/{namespace}/configmaps",
                             content=b"metadata: {name: [unclosed\n",
                             headers={"Content-Type": "application/yaml"})
    assert response.status_code == 400
    assert status_of(response)["reason"] == "BadRequest"


def test_yaml_body_is_accepted(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        response = http.post(f"/api/v1/namespaces/{namespace}/configmaps",
                             content=b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: yaml\n"
                                     b"data: {a: 'yes', b: \"0755\", c: yEs, d: 1:20}\n",
                             headers={"Content-Type": "application/yaml"})
    assert response.status_code == 201, response.text
    assert response.json()["metadata"]["name"] == "yaml"
    assert response.json()["data"] == {"a": "yes", "b": "0755", "c": "yEs", "d": "1:20"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"metadata:\n  name: y\n", "json: cannot unmarshal bool into Go struct field "
                                     "ObjectMeta.metadata.name of type string"),
        (b"metadata: {name: b}\ndata: {a: yes}\n", "json: cannot unmarshal bool into Go struct "
                                                    "field ConfigMap.data of type string"),
        (b"metadata: {name: b}\ndata: {a: Off}\n", "json: cannot unmarshal bool into Go struct "
                                                    "field ConfigMap.data of type string"),
        (b"metadata: {name: b}\ndata: {a: 0755}\n", "json: cannot unmarshal number into Go "
                                                     "struct field ConfigMap.data of type string"),
    ],
)
def test_yaml_bodies_are_yaml_1_1(cluster: Cluster, namespace: str, body: bytes,
                                  expected: str) -> None:
    """sigs.k8s.io/yaml reads YAML 1.1: `y`, `yes`, `on`, `off`... are booleans, `0755` a
    number, so a manifest must quote them where it means a string."""
    with cluster.http() as http:
        response = http.post(f"/api/v1/namespaces/{namespace}/configmaps",
                             content=b"apiVersion: v1\nkind: ConfigMap\n" + body,
                             headers={"Content-Type": "application/yaml"})
    assert response.status_code == 400
    status = status_of(response)
    assert status["reason"] == "BadRequest"
    assert status["message"] == f'ConfigMap in version "v1" cannot be handled as a ConfigMap: ' \
                                f"{expected}"


def test_a_json_array_body_is_400(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        response = http.post(f"/api/v1/namespaces/{namespace}/configmaps", json=[1, 2])
    assert response.status_code == 400
    assert status_of(response)["reason"] == "BadRequest"


def test_wrong_content_type_is_415(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        response = http.post(f"/api/v1/namespaces/{namespace}/configmaps",
                             content=b"name=x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    status = status_of(response)
    assert status["reason"] == "UnsupportedMediaType"
    assert status["message"].startswith(
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json, application/yaml")


def test_unknown_resource_is_404(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        response = http.post(f"/api/v1/namespaces/{namespace}/frobnicators",
                             json={"metadata": {"name": "x"}})
    assert response.status_code == 404
    status = status_of(response)
    assert status["reason"] == "NotFound"
    assert status["message"] == "the server could not find the requested resource"


@pytest.mark.parametrize("path", ["/apis/apps/v1/nosuch", "/api/v1/namespaces/default/nosuch",
                                  "/api/v1/namespaces/default/configmaps/x/nosuch",
                                  "/apis/apps/v9/deployments", "/apis/apps/v9", "/api/v9",
                                  "/api/v9/pods"])
def test_what_a_built_in_group_lacks_is_a_404_status(cluster: Cluster, path: str) -> None:
    """Below `/api` and a built-in group (go-restful serves `/apis/apps` itself), an unknown
    version or resource is a Status."""
    with cluster.http() as http:
        response = http.get(path)
    assert response.status_code == 404
    status = status_of(response)
    assert status["reason"] == "NotFound"
    assert status["message"] == "the server could not find the requested resource"
    assert status["details"] == {}


@pytest.mark.parametrize("path", ["/apis/no.such.group.contract.kubevirt-usb.io/v1/things",
                                  "/apis/no.such.group.contract.kubevirt-usb.io/v1",
                                  "/apis/no.such.group.contract.kubevirt-usb.io", "/no/such/path"])
def test_unknown_group_version_is_a_plain_404(cluster: Cluster, path: str) -> None:
    """No handler serves the path: Go's `http.NotFound`, text, not a Status."""
    with cluster.http() as http:
        response = http.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "404 page not found\n"


def test_what_a_crd_does_not_serve_is_a_plain_404(cluster: Cluster, namespace: str,
                                                   widget_crd: ContractCRD) -> None:
    """The CRD handler passes a resource its group lacks, or a namespaced resource named without
    a namespace, to the last handler."""
    with cluster.http() as http:
        http.post(widget_crd.path(namespace=namespace),
                  json=widget_crd.obj("n", namespace=namespace))
        for path in (f"/apis/{widget_crd.group}/{widget_crd.version}/namespaces/{namespace}/"
                     "nosuch",
                     f"/apis/{widget_crd.group}/{widget_crd.version}/{widget_crd.plural}/n",
                     f"/apis/{widget_crd.group}/v9/namespaces/{namespace}/{widget_crd.plural}"):
            response = http.get(path)
            assert response.status_code == 404, path
            assert response.text == "404 page not found\n", path
        scale = http.get(widget_crd.path(namespace=namespace, name="n", subresource="scale"))
    assert scale.status_code == 404
    assert status_of(scale)["message"] == f'{widget_crd.plural}.{widget_crd.group} "n" not found'


def test_body_of_another_kind_is_400(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        response = http.post(f"/api/v1/namespaces/{namespace}/configmaps",
                             json={"apiVersion": "v1", "kind": "Secret",
                                   "metadata": {"name": "x"}})
    assert response.status_code == 400
    assert status_of(response)["reason"] == "BadRequest"


def test_body_of_another_kind_for_a_custom_resource_is_422(
        cluster: Cluster, namespace: str, widget_crd: ContractCRD) -> None:
    """Custom resources decode any kind; their validation then refuses it."""
    body = {**widget_crd.obj("k", namespace=namespace), "kind": "Sprocket"}
    with cluster.http() as http:
        response = http.post(widget_crd.path(namespace=namespace), json=body)
    assert response.status_code == 422
    status = status_of(response)
    assert status["reason"] == "Invalid"
    assert status["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "kind",
                                            "message": 'Invalid value: "Sprocket": must be '
                                                       "Widget"}]


def test_body_of_another_api_version_is_400(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        response = http.post(f"/api/v1/namespaces/{namespace}/configmaps",
                             json={"apiVersion": "apps/v1", "kind": "ConfigMap",
                                   "metadata": {"name": "x"}})
    assert response.status_code == 400
    assert status_of(response)["reason"] == "BadRequest"


@pytest.mark.parametrize("name", ["Upper", "under_score", "-dash", "a" * 254, "dot."])
def test_invalid_names_are_422(cluster: Cluster, namespace: str, name: str) -> None:
    with cluster.http() as http:
        response = http.post(f"/api/v1/namespaces/{namespace}/configmaps",
                             json={"metadata": {"name": name}})
    assert response.status_code == 422
    status = status_of(response)
    assert status["reason"] == "Invalid"
    assert status["details"]["causes"][0]["field"] == "metadata.name"
    assert status["details"]["kind"] == "ConfigMap"


def test_invalid_namespace_name_is_422(cluster: Cluster) -> None:
    with cluster.http() as http:
        dotted = http.post("/api/v1/namespaces", json={"metadata": {"name": "has.dot"}})
        upper = http.post("/api/v1/namespaces", json={"metadata": {"name": "Upper"}})
    assert dotted.status_code == 422
    assert status_of(dotted)["message"] == ('Namespace "has.dot" is invalid: metadata.name: '
                                            'Invalid value: "has.dot": must not contain dots')
    assert upper.status_code == 422
    assert status_of(upper)["message"].startswith(
        'Namespace "Upper" is invalid: metadata.name: Invalid value: "Upper": a lowercase RFC 1123 '
        "label must consist of lower case alphanumeric characters or '-'")


def test_missing_name_is_422(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        response = http.post(f"/api/v1/namespaces/{namespace}/configmaps",
                             json={"metadata": {}})
    assert response.status_code == 422
    status = status_of(response)
    assert status["message"] == ('ConfigMap "" is invalid: metadata.name: Required value: '
                                 "name or generateName is required")


def test_post_to_a_named_object_is_405(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        response = http.post(f"/api/v1/namespaces/{namespace}/configmaps/x",
                             json={"metadata": {"name": "x"}})
    assert response.status_code == 405
    status = status_of(response)
    assert status["reason"] == "MethodNotAllowed"
    assert status["message"] == "the server does not allow this method on the requested resource"


def test_put_to_a_collection_is_405(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        response = http.put(f"/api/v1/namespaces/{namespace}/configmaps",
                            json={"metadata": {"name": "x"}})
    assert response.status_code == 405
    assert status_of(response)["reason"] == "MethodNotAllowed"


def test_list_of_a_create_only_resource_is_405(cluster: Cluster) -> None:
    with cluster.http() as http:
        response = http.get("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
    assert response.status_code == 405
    assert status_of(response)["reason"] == "MethodNotAllowed"


def test_the_server_survives_garbage_and_keeps_serving(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    garbage = [b"\xff\xfe\x00", b"null", b"[]", b'"string"', b"{" * 1000, b"1e999999"]
    with cluster.http() as http:
        for body in garbage:
            response = http.post(path, content=body, headers={"Content-Type":
                                                              "application/json"})
            assert 400 <= response.status_code < 500, (body, response.text)
        for body in garbage:
            response = http.put(f"{path}/x", content=body,
                                headers={"Content-Type": "application/json"})
            assert 400 <= response.status_code < 500, (body, response.text)
        assert http.post(path, json={"metadata": {"name": "after"}}).status_code == 201


def test_schema_violation_on_update_is_422(cluster: Cluster, namespace: str,
                                           widget_crd: ContractCRD) -> None:
    with cluster.http() as http:
        created = http.post(widget_crd.path(namespace=namespace),
                            json=widget_crd.obj("u", namespace=namespace)).json()
        created["spec"]["size"] = "large"
        response = http.put(widget_crd.path(namespace=namespace, name="u"), json=created)
    assert response.status_code == 422
    assert status_of(response)["details"]["causes"][0]["field"] == "spec.size"


def test_invalid_label_key_is_422(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        response = http.post(f"/api/v1/namespaces/{namespace}/configmaps",
                             json={"metadata": {"name": "x", "labels": {"bad key": "v"}}})
    assert response.status_code == 422
    status = status_of(response)
    message = ("Invalid value: \"bad key\": name part must consist of alphanumeric characters, "
               "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
               "'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
               "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
    assert status["details"]["causes"] == [{"reason": "FieldValueInvalid", "message": message,
                                            "field": "metadata.labels"}]
    assert status["message"] == f'ConfigMap "x" is invalid: metadata.labels: {message}'


def test_owner_reference_without_uid_is_422(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        response = http.post(f"/api/v1/namespaces/{namespace}/configmaps", json={"metadata": {
            "name": "x", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap",
                                              "name": "o"}]}})
    assert response.status_code == 422
    assert status_of(response)["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "message": 'Invalid value: "": must not be empty',
        "field": "metadata.ownerReferences.uid"}]


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"name": 5}, "cannot unmarshal number into Go struct field ObjectMeta.metadata.name of "
                      "type string"),
        ({"name": "m", "labels": ["a"]}, "cannot unmarshal array into Go struct field "
                                         "ObjectMeta.metadata.labels of type map[string]string"),
        ({"name": "m", "finalizers": "a/b"}, "cannot unmarshal string into Go struct field "
                                             "ObjectMeta.metadata.finalizers of type []string"),
    ],
)
def test_metadata_of_the_wrong_type_is_400_and_never_stored(
        cluster: Cluster, namespace: str, metadata: dict[str, object], expected: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        response = http.post(path, json={"apiVersion": "v1", "kind": "ConfigMap",
                                         "metadata": metadata})
        assert response.status_code == 400
        status = status_of(response)
        assert status["reason"] == "BadRequest"
        assert expected in status["message"]
        assert http.post(path, json={"metadata": {"name": "other"}}).status_code == 201
        patched = http.patch(f"{path}/other", content=b'{"metadata": {"labels": ["a"]}}',
                             headers=MERGE)
        assert patched.status_code == 422  # the patch handler's "patch: Invalid value"
        assert status_of(patched)["reason"] == "Invalid"
        listed = http.get(path)
        assert listed.status_code == 200
        names = [o["metadata"]["name"] for o in listed.json()["items"]]
        assert "other" in names
        assert all(isinstance(name, str) for name in names)


def test_yaml_scalar_keys_become_strings_as_in_json(cluster: Cluster, namespace: str) -> None:
    with cluster.http() as http:
        response = http.post(f"/api/v1/namespaces/{namespace}/configmaps",
                             content=b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: keys}\n"
                                     b"data: {1: one, 2.5: two}\n",
                             headers={"Content-Type": "application/yaml"})
        assert response.status_code == 201, response.text
        assert response.json()["data"] == {"1": "one", "2.5": "two"}
        assert http.get(f"/api/v1/namespaces/{namespace}/configmaps/keys").status_code == 200


@pytest.mark.parametrize("content_type", ["application/yaml", "application/apply-patch+yaml"])
def test_yaml_nested_beyond_any_limit_is_400(cluster: Cluster, namespace: str,
                                             content_type: str) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with cluster.http() as http:
        if content_type == "application/yaml":
            response = http.post(path, content=body, headers={"Content-Type": content_type})
        else:
            response = http.patch(f"{path}/deep", params={"fieldManager": "test"}, content=body,
                                  headers={"Content-Type": content_type})
        assert response.status_code == 400
        assert status_of(response)["reason"] == "BadRequest"
        assert http.get(path).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
         {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
          "spec": {"resourceAttributes": "pods"}},
         "cannot unmarshal string into Go struct field SelfSubjectAccessReviewSpec.spec."
         "resourceAttributes of type v1.ResourceAttributes"),
        ("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
         {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
          "metadata": {"name": "things.bad-input.example.com"}, "spec": "x"},
         "cannot unmarshal string into Go struct field CustomResourceDefinition.spec of type "
         "v1.CustomResourceDefinitionSpec"),
    ],
)
def test_a_field_of_the_wrong_json_type_is_400(cluster: Cluster, path: str,
                                               body: dict[str, object], expected: str) -> None:
    with cluster.http() as http:
        response = http.post(path, params={"dryRun": "All"}, json=body)
        assert response.status_code == 400
        status = status_of(response)
        assert status["reason"] == "BadRequest"
        assert expected in status["message"]
        assert http.get("/api/v1/namespaces").status_code == 200

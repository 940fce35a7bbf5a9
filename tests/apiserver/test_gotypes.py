"""encoding/json's words for a field of the wrong JSON type, at any depth."""

from __future__ import annotations

import pytest

from kubevirt_usb.apiserver.gotypes import BODIES, body_type_error, metadata_type_error

CRD = ("apiextensions.k8s.io", "CustomResourceDefinition")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"versions": [{"name": 1}]}, "cannot unmarshal number into Go struct field "
                                      "CustomResourceDefinitionVersion.spec.versions.name of "
                                      "type string"),
        ({"versions": [{"schema": {"openAPIV3Schema": {"properties": {"a": {"properties": {
            "b": {"type": True}}}}}}}]},
         "cannot unmarshal bool into Go struct field JSONSchemaProps.spec.versions.schema."
         "openAPIV3Schema.properties.properties.type of type string"),
        ({"names": {"shortNames": "x"}}, "cannot unmarshal string into Go struct field "
                                         "CustomResourceDefinitionNames.spec.names.shortNames "
                                         "of type []string"),
    ],
)
def test_the_first_mismatch_is_named_with_its_path(spec: dict[str, object], expected: str
                                                   ) -> None:
    assert body_type_error(*CRD, {"spec": spec}) == f"json: {expected}"


def test_nulls_and_well_typed_bodies_and_other_kinds_pass() -> None:
    assert body_type_error(*CRD, {"spec": {"names": None, "versions": [None]}}) is None
    assert body_type_error(*CRD, {"spec": {"group": "a.io", "versions": [
        {"name": "v1", "served": True, "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
    ) is None
    assert body_type_error("", "ConfigMap", {"spec": "anything"}) is None
    assert ("authentication.k8s.io", "TokenRequest") in BODIES


@pytest.mark.parametrize(("meta", "expected"), [
    ({"name": 5}, "number into Go struct field ObjectMeta.metadata.name of type string"),
    ({"generation": True}, "bool into Go struct field ObjectMeta.metadata.generation of type "
                           "int64"),
    ({"generation": 1.5}, "number into Go struct field ObjectMeta.metadata.generation of type "
                          "int64"),
    ({"labels": ["a"]}, "array into Go struct field ObjectMeta.metadata.labels of type "
                        "map[string]string"),
    ({"annotations": {"a": 1}}, "number into Go struct field ObjectMeta.metadata.annotations "
                                "of type string"),
    ({"finalizers": [1]}, "number into Go struct field ObjectMeta.metadata.finalizers of type "
                          "string"),
    ({"ownerReferences": {}}, "object into Go struct field ObjectMeta.metadata.ownerReferences "
                              "of type []v1.OwnerReference"),
    ({"managedFields": ["x"]}, "string into Go struct field ObjectMeta.metadata.managedFields "
                               "of type v1.ManagedFieldsEntry"),
])
def test_object_meta_of_the_wrong_type(meta: dict[str, object], expected: str) -> None:
    assert metadata_type_error(meta) == f"json: cannot unmarshal {expected}"


def test_object_meta_with_nulls_and_the_right_types_passes() -> None:
    assert metadata_type_error({"name": "a", "generation": 2, "labels": {"a": "b", "c": None},
                                "finalizers": None, "ownerReferences": [{"uid": "u"}]}) is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [({"a": True}, "json: cannot unmarshal bool into Go struct field ConfigMap.data of type "
                   "string"),
     ({"a": 493}, "json: cannot unmarshal number into Go struct field ConfigMap.data of type "
                  "string"),
     (["a"], "json: cannot unmarshal array into Go struct field ConfigMap.data of type "
             "map[string]string"),
     ({"a": "yes"}, None)],
)
def test_config_map_data_holds_strings(data: object, expected: str | None) -> None:
    assert body_type_error("", "ConfigMap", {"data": data}) == expected

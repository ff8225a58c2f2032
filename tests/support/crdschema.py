"""Validate rendered manifests against the real upstream CRD schemas in ../shared/crds."""

import glob
import os

import jsonschema
import yaml

from tests.support.shared import shared_path


class _CrdLoader(yaml.SafeLoader):
    """SafeLoader that reads YAML 1.1 value tags (`=`) as strings, as Go YAML does."""


_CrdLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))

_CACHE = {}


def load_crds(component):
    """All CRDs of a component directory (e.g. 'gateway-api'), keyed by (group, kind)."""
    if component not in _CACHE:
        crds = {}
        for path in sorted(glob.glob(os.path.join(shared_path("crds", component), "*.yaml"))):
            with open(path) as handle:
                for doc in yaml.load_all(handle, Loader=_CrdLoader):
                    if doc and doc.get("kind") == "CustomResourceDefinition":
                        spec = doc["spec"]
                        crds[(spec["group"], spec["names"]["kind"])] = doc
        _CACHE[component] = crds
    return _CACHE[component]


def schema_for(component, api_version, kind):
    """The openAPIV3Schema of a served version of the CRD for api_version/kind."""
    group, dummy, version = api_version.rpartition("/")
    crd = load_crds(component).get((group, kind))
    if crd is None:
        raise AssertionError("no CRD for %s %s in ../shared/crds/%s" % (api_version, kind, component))
    for ver in crd["spec"]["versions"]:
        if ver["name"] == version:
            if not ver.get("served", False):
                raise AssertionError("%s %s is not served by the CRD" % (api_version, kind))
            return ver["schema"]["openAPIV3Schema"]
    raise AssertionError("CRD %s has no version %s" % (crd["metadata"]["name"], version))


def validate(component, manifest):
    """Raise jsonschema.ValidationError (or AssertionError) if the manifest is invalid.

    Structural-schema extensions (x-kubernetes-*) are ignored by jsonschema; unknown
    fields are caught by also checking the schema's declared properties.
    """
    schema = schema_for(component, manifest["apiVersion"], manifest["kind"])
    jsonschema.Draft7Validator(schema).validate(manifest)
    _reject_unknown_fields(schema, manifest, manifest["kind"])
    name = manifest.get("metadata", {}).get("name")
    if not name:
        raise AssertionError("%s has no metadata.name" % manifest["kind"])


def _reject_unknown_fields(schema, value, path):
    """The apiserver prunes (or, with strict field validation, rejects) unknown fields."""
    if isinstance(value, dict) and schema.get("type") == "object":
        props = schema.get("properties")
        if props is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
            for key, item in value.items():
                if key in ("apiVersion", "kind", "metadata") and path.count(".") == 0:
                    continue
                if key not in props:
                    if "additionalProperties" in schema:
                        _reject_unknown_fields(schema["additionalProperties"], item, "%s.%s" % (path, key))
                        continue
                    raise AssertionError("unknown field %s.%s" % (path, key))
                _reject_unknown_fields(props[key], item, "%s.%s" % (path, key))
        elif "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
            for key, item in value.items():
                _reject_unknown_fields(schema["additionalProperties"], item, "%s.%s" % (path, key))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            _reject_unknown_fields(schema["items"], item, "%s[%d]" % (path, index))

"""Schemathesis hooks for TestContractSchemathesis (contract_schemathesis_test.go).

Every generated request is sent as a reporting form sends it: to the source
"demo", signed with Standard Webhooks headers (a fresh webhook-id, the current
time, HMAC-SHA256 over the exact body bytes sent). The check
schema_valid_refused_only_as_documented holds the intake to docs/openapi.yaml:
a body the schema allows is stored (202) or refused 422 invalid_field only
with field codes its property lists in x-schema-valid-refusals.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import time
import uuid

import schemathesis
import yaml
from schemathesis.core.parameters import ParameterLocation

_KEY = base64.b64decode(os.environ["FLAGLINE_CONTRACT_SECRET"].removeprefix("whsec_"))
_LOG = os.environ["FLAGLINE_CONTRACT_LOG"]

with open(os.environ["FLAGLINE_CONTRACT_SPEC"], encoding="utf-8") as f:
    _SPEC = yaml.safe_load(f)


def _refusals():
    """Field path (countries[i] written countries[]) -> codes a schema-valid value may get."""
    schemas = _SPEC["components"]["schemas"]

    def resolve(s):
        while "$ref" in s:
            s = schemas[s["$ref"].rsplit("/", 1)[1]]
        return s

    out = {}

    def walk(prefix, schema):
        schema = resolve(schema)
        if "x-schema-valid-refusals" in schema:
            out[prefix] = set(schema["x-schema-valid-refusals"])
        for name, sub in schema.get("properties", {}).items():
            walk(f"{prefix}.{name}" if prefix else name, sub)
        if "items" in schema:
            walk(prefix + "[]", schema["items"])

    walk("", schemas["Report"])
    return out


_REFUSALS = _refusals()


@schemathesis.hook
def before_call(context, case, kwargs):
    case.path_parameters = {**(case.path_parameters or {}), "source": "demo"}
    body = json.dumps(case.body, ensure_ascii=False).encode("utf-8")
    msg_id = "st_" + uuid.uuid4().hex
    ts = str(int(time.time()))
    mac = hmac.new(_KEY, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    headers = dict(case.headers or {})
    headers.update(
        {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": ts,
            "webhook-signature": "v1," + base64.b64encode(mac).decode(),
        }
    )
    case.headers = headers
    # The exact bytes signed are the bytes sent.
    kwargs["data"] = body


def _schema_valid(case):
    return case.meta is not None and not case.meta.is_negative_at(ParameterLocation.BODY)


@schemathesis.hook
def after_call(context, case, response):
    code = ""
    try:
        err = response.json().get("error") or {}
        code = err.get("code", "")
        codes = sorted({f"{f['field']}:{f['code']}" for f in err.get("fields", [])})
    except Exception:
        codes = []
    with open(_LOG, "a", encoding="utf-8") as log:
        valid = "valid" if _schema_valid(case) else "invalid"
        log.write(f"{response.status_code} {code or '-'} {valid} {','.join(codes) or '-'}\n")


@schemathesis.check
def schema_valid_refused_only_as_documented(ctx, response, case):
    """A body the schema allows is stored, or refused only as the schema documents."""
    if not _schema_valid(case) or response.status_code == 202:
        return None
    if response.status_code != 422:
        raise AssertionError(f"a schema-valid body was answered {response.status_code}: {response.text}")
    err = response.json()["error"]
    if err["code"] != "invalid_field":
        raise AssertionError(f"a schema-valid body was refused {err['code']}: {response.text}")
    for f in err["fields"]:
        path = re.sub(r"\[\d+\]", "[]", f["field"])
        if f["code"] not in _REFUSALS.get(path, set()):
            raise AssertionError(
                f"a schema-valid body was refused on {f['field']} with {f['code']}, "
                f"which x-schema-valid-refusals of {path} does not list: {response.text}"
            )
    return None

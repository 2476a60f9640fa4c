#!/usr/bin/env python3
"""Validate NDJSON OCSF events (`OUTPUT_FORMAT=ocsf`) against OCSF 1.1.0.

    .venv/bin/python scripts/ocsf_check.py [FILE ...]     # no FILE or `-`: standard input

Each line goes through the OCSF 1.1.0 model of its class from the PyPI package `pydantic-ocsf`
(required attributes, object types, enum members, sibling captions), then through this
project's own checks of what that package leaves loose: `class_uid`, `category_uid` and
`type_uid` (class * 100 + activity), `time` an integer, enum values of the attributes the
package does not type, `metadata.version` "1.1.0", the product, `cloud.provider`, the classes'
"at least one of" constraints, IP addresses and ports. Prints one line per bad event
("FILE:LINE: reason") and exits 1 if any; prints a count and exits 0 otherwise.
"""

from __future__ import annotations

import ipaddress
import json
import sys
from pathlib import Path

import ocsf
from pydantic import SerializeAsAny
from ocsf.v1_1_0 import objects
from ocsf.v1_1_0.events import (
    AccountChange,
    ApiActivity,
    Authentication,
    BaseEvent,
    DatastoreActivity,
)

# The Base Event model refers to objects it does not import itself.
BaseEvent.model_rebuild(
    _types_namespace={
        "SerializeAsAny": SerializeAsAny,
        **{n: getattr(objects, n) for n in ("Enrichment", "Metadata", "Observable", "Object")},
    }
)

VERSION = "1.1.0"
SCHEMA = json.loads((Path(ocsf.__file__).parent / "schemas" / "v1_1_0.json").read_text())

# class_uid -> (model, category_uid, schema name, "at least one of" constraint)
CLASSES = {
    0: (BaseEvent, 0, "base_event", None),
    3001: (AccountChange, 3, "account_change", None),
    3002: (Authentication, 3, "authentication", ("service", "dst_endpoint")),
    6003: (ApiActivity, 6, "api_activity", None),
    6005: (DatastoreActivity, 6, "datastore_activity", ("database", "databucket", "table")),
}


def enum_keys(spec: dict) -> set[int]:
    return {int(k) for k in spec.get("enum", {})}


DICTIONARY = SCHEMA["dictionary"]["attributes"]
SEVERITIES = enum_keys(DICTIONARY["severity_id"])
STATUSES = enum_keys(DICTIONARY["status_id"])
BASE_ACTIVITIES = enum_keys(DICTIONARY["activity_id"])  # 0 Unknown, 99 Other
USER_TYPES = enum_keys(SCHEMA["objects"]["user"]["attributes"]["type_id"])
DATABASE_TYPES = enum_keys(SCHEMA["objects"]["database"]["attributes"]["type_id"])
LOG_NAMES = {"connectionlog", "userlog", "useractivitylog", "cloudtrail"}


def activities(name: str) -> set[int]:
    spec = SCHEMA["events"][name].get("attributes", {}).get("activity_id", {})
    return BASE_ACTIVITIES | enum_keys(spec)


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_endpoint(where: str, ep) -> list[str]:
    if not isinstance(ep, dict):
        return [f"{where} is not an object"]
    errors = []
    if "ip" in ep:
        try:
            ipaddress.ip_address(ep["ip"])
        except (ValueError, TypeError):
            errors.append(f"{where}.ip {ep['ip']!r} is not an IP address")
    if "port" in ep and not (is_int(ep["port"]) and 0 <= ep["port"] <= 65535):
        errors.append(f"{where}.port {ep['port']!r} is not a port number")
    return errors


def is_record_id(uid: str) -> bool:
    """32 lowercase hex digits, with `-cut` after them for a record that is not whole."""
    digits = uid.removesuffix("-cut")
    return len(digits) == 32 and all(c in "0123456789abcdef" for c in digits)


def own_checks(event: dict) -> list[str]:
    """What pydantic-ocsf leaves loose. Returns the reasons, empty when the event is fine."""
    errors = []
    class_uid = event.get("class_uid")
    if not is_int(class_uid) or class_uid not in CLASSES:
        return [f"class_uid {class_uid!r} is not one of {sorted(CLASSES)}"]
    _, category_uid, name, at_least_one = CLASSES[class_uid]
    if event.get("category_uid") != category_uid:
        errors.append(f"category_uid {event.get('category_uid')!r}, expected {category_uid}")
    activity = event.get("activity_id")
    if not is_int(activity) or activity not in activities(name):
        errors.append(f"activity_id {activity!r} is not in {sorted(activities(name))}")
    elif event.get("type_uid") != class_uid * 100 + activity:
        errors.append(f"type_uid {event.get('type_uid')!r}, expected {class_uid * 100 + activity}")
    if not is_int(event.get("time")):
        errors.append(f"time {event.get('time')!r} is not an integer (epoch milliseconds)")
    if not is_int(event.get("severity_id")) or event["severity_id"] not in SEVERITIES:
        errors.append(f"severity_id {event.get('severity_id')!r} is not in {sorted(SEVERITIES)}")
    if "status_id" in event and event["status_id"] not in STATUSES:
        errors.append(f"status_id {event['status_id']!r} is not in {sorted(STATUSES)}")
    metadata = event.get("metadata") or {}
    if metadata.get("version") != VERSION:
        errors.append(f"metadata.version {metadata.get('version')!r}, expected {VERSION!r}")
    product = metadata.get("product") or {}
    if product.get("name") != "Amazon Redshift" or product.get("vendor_name") != "AWS":
        errors.append(f"metadata.product {product!r} is not Amazon Redshift by AWS")
    if metadata.get("log_name") not in LOG_NAMES:
        errors.append(f"metadata.log_name {metadata.get('log_name')!r} is not a log type")
    uid = metadata.get("uid")
    if class_uid == 6003:
        # API Activity (CloudTrail): metadata.uid is the event's eventID.
        if not (isinstance(uid, str) and uid):
            errors.append(f"metadata.uid {uid!r} is not a CloudTrail eventID")
    elif not (isinstance(uid, str) and is_record_id(uid)):
        errors.append(f"metadata.uid {uid!r} is not a record id (32 hex digits, then -cut if cut)")
    cloud = event.get("cloud")
    if not isinstance(cloud, dict) or cloud.get("provider") != "AWS":
        errors.append(f"cloud {cloud!r} does not name provider AWS")
    if at_least_one and not any(event.get(k) for k in at_least_one):
        errors.append(f"none of {', '.join(at_least_one)} is set")
    user = event.get("user") or (event.get("actor") or {}).get("user") or {}
    if "type_id" in user and user["type_id"] not in USER_TYPES:
        errors.append(f"user.type_id {user['type_id']!r} is not in {sorted(USER_TYPES)}")
    database = event.get("database")
    if database is not None and database.get("type_id") not in DATABASE_TYPES:
        errors.append(f"database.type_id {database.get('type_id')!r} is not in {sorted(DATABASE_TYPES)}")
    for key in ("src_endpoint", "dst_endpoint"):
        if key in event:
            errors.extend(check_endpoint(key, event[key]))
    if "unmapped" in event and not isinstance(event["unmapped"], dict):
        errors.append("unmapped is not an object")
    return errors


def check_line(text: str) -> list[str]:
    try:
        event = json.loads(text)
    except json.JSONDecodeError as e:
        return [f"not JSON: {e}"]
    if not isinstance(event, dict):
        return ["not a JSON object"]
    errors = own_checks(event)
    model = CLASSES.get(event.get("class_uid"), (None,))[0]
    if model is not None:
        try:
            model.model_validate(json.loads(text))  # a fresh copy: validators fill in fields
        except Exception as e:  # pydantic's ValidationError and the package's own errors
            errors.append(f"{model.__name__}: " + " ".join(str(e).split()))
    return errors


def main(argv: list[str]) -> int:
    paths = argv or ["-"]
    bad = events = 0
    for path in paths:
        stream = sys.stdin if path == "-" else open(path, encoding="utf-8")
        with stream:
            for number, line in enumerate(stream, 1):
                if not line.strip():
                    continue
                events += 1
                for reason in check_line(line):
                    bad += 1
                    print(f"{path}:{number}: {reason}")
    if bad:
        print(f"{bad} problem(s) in {events} event(s)", file=sys.stderr)
        return 1
    if events == 0:
        print("no events to check", file=sys.stderr)
        return 1
    print(f"{events} event(s) valid OCSF {VERSION}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

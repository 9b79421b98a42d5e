"""Salesforce field types (from ``describe``) as Arrow types, and record values converted to them.

=========================================================  ==========================================
describe ``type``                                          lands as
=========================================================  ==========================================
boolean                                                    boolean
int, long                                                  bigint
double, percent                                            double
currency                                                   decimal(precision, scale) (exact)
date / datetime / time                                     date / timestamp UTC / HH:MM:SS[.ffffff] text
id, reference, string, picklist, multipicklist, textarea,  string
phone, email, url, combobox, encryptedstring, anyType
address, location (compound)                               struct (or JSON text with compound=json)
base64                                                     left out: SOQL reads it one record at a time
=========================================================  ==========================================

Datetimes come as ``2024-03-01T12:00:00.000+0000``. Salesforce compares datetimes to the second (the
milliseconds of ``SystemModstamp`` are ignored in filters), so cursor values are cut to the second
when they are written into a query.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any

import pyarrow as pa

ADDRESS = pa.struct(
    [
        ("street", pa.string()),
        ("city", pa.string()),
        ("state", pa.string()),
        ("stateCode", pa.string()),
        ("postalCode", pa.string()),
        ("country", pa.string()),
        ("countryCode", pa.string()),
        ("latitude", pa.float64()),
        ("longitude", pa.float64()),
        ("geocodeAccuracy", pa.string()),
    ]
)
LOCATION = pa.struct([("latitude", pa.float64()), ("longitude", pa.float64())])
_TEXT = {"id", "reference", "string", "picklist", "multipicklist", "textarea", "phone", "email", "url", "combobox"}
_TEXT |= {"encryptedstring", "anyType"}
SKIPPED = {"base64"}


def arrow_type(field: dict[str, Any], *, compound: str) -> pa.DataType:
    kind = str(field.get("type"))
    if kind == "boolean":
        return pa.bool_()
    if kind in ("int", "long"):
        return pa.int64()
    if kind in ("double", "percent"):
        return pa.float64()
    if kind == "currency":
        precision, scale = int(field.get("precision") or 18), int(field.get("scale") or 2)
        return pa.decimal128(min(max(precision, 1), 38), min(max(scale, 0), 38))
    if kind == "date":
        return pa.date32()
    if kind == "datetime":
        return pa.timestamp("us", "UTC")
    if kind == "time":
        return pa.string()  # Delta has no TIME type
    if kind in ("address", "location"):
        if compound == "json":
            return pa.string()
        return ADDRESS if kind == "address" else LOCATION
    return pa.string()


def convert(value: Any, arrow: pa.DataType, field_type: str = "") -> Any:
    """One field's JSON value as the Python value Arrow takes for ``arrow``."""
    if value is None:
        return None
    if pa.types.is_timestamp(arrow):
        return parse_datetime(str(value))
    if pa.types.is_date32(arrow):
        return dt.date.fromisoformat(str(value))
    if pa.types.is_decimal(arrow):
        return decimal.Decimal(str(value)).quantize(decimal.Decimal(1).scaleb(-arrow.scale))
    if pa.types.is_struct(arrow):
        return value if isinstance(value, dict) else None
    if field_type == "time":
        return dt.time.fromisoformat(str(value).removesuffix("Z")).isoformat()
    if pa.types.is_string(arrow) and not isinstance(value, str):
        return json.dumps(value) if isinstance(value, dict | list) else str(value)
    return value


def parse_datetime(text: str) -> dt.datetime:
    """``2024-03-01T12:00:00.000+0000`` (or with ``Z``) as an aware UTC datetime."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


def soql_literal(value: Any, arrow: pa.DataType) -> str:
    """A cursor value written into SOQL for a field of ``arrow`` type."""
    if pa.types.is_timestamp(arrow):
        moment = value if isinstance(value, dt.datetime) else parse_datetime(str(value))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if pa.types.is_date32(arrow):
        return (value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))).isoformat()
    if pa.types.is_integer(arrow):
        return str(int(value))
    if pa.types.is_floating(arrow) or pa.types.is_decimal(arrow):
        return str(decimal.Decimal(str(value)))
    if pa.types.is_string(arrow):
        return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise ValueError(f"cannot compare a {arrow} field with a cursor")

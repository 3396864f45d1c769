#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""validate.py SCHEMA FILE — check a JSON document against a committed JSON Schema (Debian's
python3-jsonschema); prints the first error and exits 1 when it does not match.

Also a module for the daemon tests: validate(name, doc) checks a parsed document against
doc/schema/NAME.schema.json and returns None or the error. The schemas share their objects
through doc/schema/defs.schema.json ("$ref": "defs.schema.json#/$defs/gpu"); every schema of
the directory is loaded, so those references resolve offline, under jsonschema's old
RefResolver as under its newer referencing registry."""
import functools
import glob
import json
import os
import sys

import jsonschema

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "doc", "schema")


def _load(directory):
    return {s["$id"]: s for s in (json.load(open(p)) for p in sorted(glob.glob(os.path.join(directory, "*.schema.json"))))}


def _validator(schema, store):
    try:
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012
        registry = Registry().with_resources((i, Resource.from_contents(s, default_specification=DRAFT202012)) for i, s in store.items())
        return jsonschema.Draft202012Validator(schema, registry=registry)
    except ImportError:         # jsonschema < 4.18 (Debian 12's 4.10)
        resolver = jsonschema.RefResolver(schema["$id"], schema, store=store)
        return jsonschema.Draft202012Validator(schema, resolver=resolver)


# One validator per schema and process: the tests validate hundreds of documents, and loading the
# directory, checking the schema and resolving its references again for each cost more than the
# validation itself. The schemas do not change while a test runs.
@functools.lru_cache(maxsize=None)
def _compiled(name, directory):
    store = _load(directory)
    schema = json.load(open(os.path.join(directory, name + ".schema.json")))
    jsonschema.Draft202012Validator.check_schema(schema)
    return _validator(schema, store)


def validate(name, doc, directory=SCHEMA_DIR):
    """None when doc matches doc/schema/NAME.schema.json, else 'MESSAGE at PATH'."""
    err = next(iter(sorted(_compiled(name, directory).iter_errors(doc), key=lambda e: list(e.absolute_path))), None)
    return None if err is None else "%s at /%s" % (err.message[:400], "/".join(map(str, err.absolute_path)))


if __name__ == "__main__":
    path = sys.argv[1]
    name = os.path.basename(path)[: -len(".schema.json")]
    error = validate(name, json.load(open(sys.argv[2])), os.path.dirname(os.path.abspath(path)))
    if error:
        print("%s: %s" % (sys.argv[2], error), file=sys.stderr)
        sys.exit(1)

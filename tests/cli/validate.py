#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""validate.py SCHEMA FILE — check a JSON document against a committed JSON Schema (Debian's
python3-jsonschema); prints the first error and exits 1 when it does not match."""
import json
import sys

import jsonschema

schema = json.load(open(sys.argv[1]))
doc = json.load(open(sys.argv[2]))
try:
    jsonschema.Draft202012Validator(schema).validate(doc)
except jsonschema.ValidationError as e:
    print("%s: %s at %s" % (sys.argv[2], e.message, "/".join(map(str, e.absolute_path))), file=sys.stderr)
    sys.exit(1)

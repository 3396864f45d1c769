#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""doc-args.py — each module's options as ansible-doc shows them (its DOCUMENTATION with the
doc fragments of plugins/doc_fragments merged in) are the options its AnsibleModule takes: the
same names, types, defaults, choices, elements and required. ansible-test's validate-modules
does this, but needs its own virtualenv and pip downloads; this runs offline.

Usage: doc-args.py COLLECTIONS_DIR MODULE... with the Python ansible-core runs on (the modules
import it), ansible-doc on PATH and ANSIBLE_COLLECTIONS_PATH set.
Prints each difference and exits 1 when there is one.
"""
import importlib
import json
import subprocess
import sys

collections_dir, modules = sys.argv[1], sys.argv[2:]
sys.path.insert(0, collections_dir)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree


class Captured(Exception):
    pass


def argument_spec(module):
    """The argument_spec the module's main() hands AnsibleModule (which is not run)."""
    m = importlib.import_module('ansible_collections.vgpuctl.vgpu.plugins.modules.' + module)
    spec = {}

    def fake(argument_spec, **kwargs):
        spec.update(argument_spec)
        raise Captured()
    m.AnsibleModule = fake
    try:
        m.main()
    except Captured:
        return spec
    raise SystemExit('%s: main() made no AnsibleModule' % module)


def documented(module):
    out = subprocess.run(['ansible-doc', '--json', '-t', 'module', 'vgpuctl.vgpu.' + module],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit('ansible-doc %s: exit %d: %s' % (module, out.returncode, out.stderr.strip()))
    return json.loads(out.stdout)['vgpuctl.vgpu.' + module]['doc'].get('options', {})


def fields(o, doc):
    """What both sides say of one option, with the defaults either side leaves out."""
    return dict(type=o.get('type', 'str'), default=o.get('default'), required=bool(o.get('required', False)),
                choices=o.get('choices'), elements=o.get('elements'),
                # a description is the documentation's alone, and each option must have one
                **({'described': bool(o.get('description'))} if doc else {'described': True}))


bad = 0
for module in modules:
    spec, doc = argument_spec(module), documented(module)
    for name in sorted(set(spec) | set(doc)):
        if name not in doc:
            print('%s: option %s is taken but not documented' % (module, name))
        elif name not in spec:
            print('%s: option %s is documented but not taken' % (module, name))
        elif fields(spec[name], False) != fields(doc[name], True):
            print('%s: option %s: the module has %s, the documentation %s'
                  % (module, name, fields(spec[name], False), fields(doc[name], True)))
        else:
            continue
        bad += 1
sys.exit(1 if bad else 0)

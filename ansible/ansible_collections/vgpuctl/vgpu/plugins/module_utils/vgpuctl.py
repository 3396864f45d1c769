# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs vgpuctl for the modules of this collection and reads its --json output: the JSON keys are
# stable (doc/schema in vgpuctl's source), its tables are not, so nothing here parses a table.
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

COMMON_ARGS = dict(
    vgpuctl=dict(type='path', default='vgpuctl'),
    root=dict(type='path'),
)


def _env(module):
    env = {}
    if module.params.get('root'):
        env['VGPU_ROOT'] = module.params['root']
    # vgpu_session: the broker and its token reach `vgpuctl fleet` as its environment (never argv,
    # where the token would show in ps)
    if module.params.get('broker'):
        env['VGPU_BROKER'] = module.params['broker']
    if module.params.get('token'):
        env['VGPU_BROKER_TOKEN'] = module.params['token']
    return env


def run(module, args, ok_rcs=(0,), data=None):
    """Run vgpuctl ARGS; return (rc, stdout, stderr), failing the module on an rc not in ok_rcs."""
    exe = module.params['vgpuctl']
    if os.sep not in exe:
        exe = module.get_bin_path(exe, required=True, opt_dirs=['/usr/sbin', '/sbin'])
    rc, out, err = module.run_command([exe] + list(args), environ_update=_env(module), data=data,
                                      binary_data=data is not None)
    if rc not in ok_rcs:
        module.fail_json(msg='vgpuctl %s failed (exit %d): %s' % (' '.join(args), rc, err.strip()),
                         rc=rc, stdout=out, stderr=err)
    return rc, out, err


def run_json(module, args, ok_rcs=(0,)):
    """Run vgpuctl ARGS --json; return (rc, the parsed output)."""
    rc, out, err = run(module, list(args) + ['--json'], ok_rcs)
    try:
        return rc, json.loads(out)
    except ValueError as e:
        module.fail_json(msg='vgpuctl %s --json printed no JSON: %s' % (' '.join(args), e),
                         rc=rc, stdout=out, stderr=err)
    return rc, None

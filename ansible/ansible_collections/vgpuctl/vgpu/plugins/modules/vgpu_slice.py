#!/usr/bin/python
# SPDX-License-Identifier: LGPL-2.1-or-later
# vgpu_slice: one software slice present (with these quotas) or absent. What exists is read from
# `vgpuctl slice list --json`; changes are `vgpuctl slice create|remove --json`, whose `changed`
# the module reports. A slice that exists with other quotas is an error, as in vgpuctl: removing
# it would take the GPU from the containers that use it.
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: vgpu_slice
short_description: Create or remove a software slice of an NVIDIA GPU
version_added: "1.0.0"
description:
  - A slice is a named tenant of a GPU with a frame-buffer quota and a compute share, enforced
    in containers by vgpuctl's CUDA shim; containers get it as the CDI device
    C(vgpuctl.io/slice=NAME).
  - Idempotent. A slice that exists with other settings than those given is not changed; the
    module fails and says what differs (remove it first, with O(state=absent)).
options:
  name:
    description: The slice's name (CDI's device-name rule).
    type: str
    required: true
  state:
    description: Whether the slice exists.
    type: str
    choices: [present, absent]
    default: present
  gpu:
    description: The GPU's PCI address (C(3b:00.0) or C(0000:3b:00.0)); required with O(state=present).
    type: str
  memory:
    description: The frame-buffer quota (C(512M), C(4G), bytes); none when left out.
    type: str
  share:
    description: The compute share in percent (C(30) or C(30%)).
    type: str
  policy:
    description: The scheduling policy.
    type: str
    choices: [best-effort, equal-share, fixed-share]
  scrub:
    description: When freed memory is scrubbed.
    type: str
    choices: [on-free, on-exit, "off"]
extends_documentation_fragment:
  - vgpuctl.vgpu.vgpuctl
  - vgpuctl.vgpu.vgpuctl.root
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
author:
  - vgpuctl maintainers (@vgpuctl)
'''

EXAMPLES = r'''
- name: A slice for alice's containers
  vgpuctl.vgpu.vgpu_slice:
    name: alice
    gpu: "3b:00.0"
    memory: 4G
    share: 30%

- name: No slice for bob
  vgpuctl.vgpu.vgpu_slice:
    name: bob
    state: absent
'''

RETURN = r'''
slice:
  description: The slice as C(vgpuctl slice show NAME --json) prints it; null when absent.
  returned: always
  type: dict
'''

import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vgpuctl.vgpu.plugins.module_utils.vgpuctl import COMMON_ARGS, run_json

UNITS = {'': 1, 'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}


def parse_bytes(module, text):
    m = re.match(r'^\s*(\d+)\s*([KMGT]?)(i?B)?\s*$', text, re.IGNORECASE)
    if not m:
        module.fail_json(msg='memory: %r is not a size (512M, 4G, bytes)' % text)
    return int(m.group(1)) * UNITS[m.group(2).upper()]


def normalize_bdf(bdf):
    bdf = bdf.lower()
    return bdf if bdf.count(':') == 2 else '0000:' + bdf


def find(module, name):
    rc, slices = run_json(module, ['slice', 'list'])
    for s in slices:
        if s['name'] == name:
            return s
    return None


def differences(module, have):
    p = module.params
    want = {'gpu': normalize_bdf(p['gpu'])}
    if p['memory'] is not None:
        want['memory_bytes'] = parse_bytes(module, p['memory'])
    if p['share'] is not None:
        want['share_percent'] = int(p['share'].rstrip('%'))
    for key in ('policy', 'scrub'):
        if p[key] is not None:
            want[key] = p[key]
    return ['%s is %s, not %s' % (k, have.get(k), v) for k, v in sorted(want.items()) if have.get(k) != v]


def main():
    argument_spec = dict(
        name=dict(type='str', required=True),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        gpu=dict(type='str'),
        memory=dict(type='str'),
        share=dict(type='str'),
        policy=dict(type='str', choices=['best-effort', 'equal-share', 'fixed-share']),
        scrub=dict(type='str', choices=['on-free', 'on-exit', 'off']),
    )
    argument_spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[('state', 'present', ('gpu',))])
    p = module.params
    name = p['name']
    have = find(module, name)

    if p['state'] == 'absent':
        if have is None:
            module.exit_json(changed=False, slice=None)
        if not module.check_mode:
            rc, outcome = run_json(module, ['slice', 'remove', name])
        module.exit_json(changed=True, slice=None, diff=dict(before=have, after={}))

    if have is not None:
        diffs = differences(module, have)
        if diffs:
            module.fail_json(msg='slice %s exists with other settings: %s' % (name, '; '.join(diffs)), slice=have)
        module.exit_json(changed=False, slice=have)

    if module.check_mode:
        module.exit_json(changed=True, slice=None, diff=dict(before={}, after=dict(name=name, gpu=p['gpu'])))
    args = ['slice', 'create', name, '--gpu', p['gpu']]
    for opt in ('memory', 'share', 'policy', 'scrub'):
        if p[opt] is not None:
            args += ['--' + opt, p[opt]]
    rc, outcome = run_json(module, args)
    now = find(module, name)
    module.exit_json(changed=bool(outcome.get('changed', True)), slice=now, diff=dict(before={}, after=now or {}))


if __name__ == '__main__':
    main()

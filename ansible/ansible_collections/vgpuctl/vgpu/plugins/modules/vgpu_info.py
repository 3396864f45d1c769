#!/usr/bin/python
# SPDX-License-Identifier: LGPL-2.1-or-later
# vgpu_info: a vGPU host's inventory and health as facts, from `vgpuctl list --json` and
# `vgpuctl doctor --json` (whose exit 1 means "a check failed", which is a result, not an error).
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: vgpu_info
short_description: Inventory and health of a vGPU host as facts
version_added: "1.0.0"
description:
  - Reads the host's GPUs, their virtual functions and vGPU instances and its software slices
    (C(vgpuctl list --json)) and, unless O(doctor=false), every prerequisite check
    (C(vgpuctl doctor --json)).
  - Returns them and sets the fact C(vgpu) to the same dictionary.
options:
  doctor:
    description: Also run the health checks (C(vgpuctl doctor)).
    type: bool
    default: true
  defined:
    description: Also list the persistent definitions (C(vgpuctl list --defined)).
    type: bool
    default: false
extends_documentation_fragment:
  - vgpuctl.vgpu.vgpuctl
  - vgpuctl.vgpu.vgpuctl.root
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
author:
  - vgpuctl maintainers (@vgpuctl)
'''

EXAMPLES = r'''
- name: Read the vGPU inventory
  vgpuctl.vgpu.vgpu_info:

- name: Show the GPUs' addresses
  ansible.builtin.debug:
    msg: "{{ vgpu.gpus | map(attribute='bdf') | list }}"
'''

RETURN = r'''
gpus:
  description: The GPUs, as in C(vgpuctl list --json) (doc/schema/list.schema.json).
  returned: always
  type: list
  elements: dict
instances:
  description: The vGPU instances (mediated devices and vendor VFs).
  returned: always
  type: list
  elements: dict
slices:
  description: The software slices, as C(vgpuctl slice list --json).
  returned: always
  type: list
  elements: dict
definitions:
  description: The persistent definitions; only with O(defined=true).
  returned: when defined is true
  type: list
  elements: dict
doctor:
  description: The health checks, as C(vgpuctl doctor --json) (C({id, subject, status, summary, evidence, remedy})).
  returned: when doctor is true
  type: list
  elements: dict
healthy:
  description: Whether no health check failed (C(vgpuctl doctor) exited 0).
  returned: when doctor is true
  type: bool
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vgpuctl.vgpu.plugins.module_utils.vgpuctl import COMMON_ARGS, run_json


def main():
    argument_spec = dict(
        doctor=dict(type='bool', default=True),
        defined=dict(type='bool', default=False),
    )
    argument_spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)

    rc, listing = run_json(module, ['list'] + (['--defined'] if module.params['defined'] else []))
    info = dict(gpus=listing.get('gpus', []), instances=listing.get('instances', []),
                slices=listing.get('slices', []))
    if module.params['defined']:
        info['definitions'] = listing.get('definitions', [])
    if module.params['doctor']:
        rc, checks = run_json(module, ['doctor'], ok_rcs=(0, 1))
        info['doctor'] = checks
        info['healthy'] = rc == 0
    module.exit_json(changed=False, ansible_facts=dict(vgpu=info), **info)


if __name__ == '__main__':
    main()

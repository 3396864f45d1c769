#!/usr/bin/python
# SPDX-License-Identifier: LGPL-2.1-or-later
# vgpu_host: make a host match a host.yaml with `vgpuctl apply`. Check mode is
# `vgpuctl apply --dry-run`, the diff is vgpuctl's own plan (`--diff`), and `changed` comes from
# the number of actions in the plan vgpuctl prints with --json.
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: vgpu_host
short_description: Make a vGPU host match a host.yaml (vgpuctl apply)
version_added: "1.0.0"
description:
  - Runs C(vgpuctl apply) on a host.yaml that declares the host's mediated devices, SR-IOV
    virtual functions, scheduler policies and software slices. vgpuctl plans the difference
    and applies it under its host lock; a failed apply rolls back.
  - In check mode runs C(vgpuctl apply --dry-run) and changes nothing.
  - With C(--diff) reports vgpuctl's plan (C(vgpuctl apply --dry-run --diff)) as the diff.
  - The file becomes the host's saved configuration, which C(vgpuctl-restore.service)
    re-applies at boot.
options:
  src:
    description:
      - Path of the host.yaml on the managed host.
      - Exactly one of O(src) and O(content) is required.
    type: path
  content:
    description:
      - The host.yaml itself; the module writes it to a temporary file for vgpuctl.
    type: str
  force:
    description:
      - Pass C(--force) to vgpuctl, which then also removes devices in use.
    type: bool
    default: false
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
- name: Carve the GPUs as host.yaml says
  vgpuctl.vgpu.vgpu_host:
    src: /etc/vgpuctl/host.yaml

- name: Two slices for containers
  vgpuctl.vgpu.vgpu_host:
    content: |
      version: 1
      slices:
        - {name: alice, gpu: "3b:00.0", memory: 4G, share: 30%}
'''

RETURN = r'''
plan:
  description: The plan vgpuctl printed with --json (doc/schema/plan.schema.json); what was done, or would be done in check mode.
  returned: always
  type: dict
  sample: {"changes": 1, "actions": [{"action": "slice-create", "uuid": null, "parent": "0000:3b:00.0",
           "type": null, "slice": "alice", "detail": "not created yet"}], "note": null}
'''

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vgpuctl.vgpu.plugins.module_utils.vgpuctl import COMMON_ARGS, run, run_json


def main():
    argument_spec = dict(
        src=dict(type='path'),
        content=dict(type='str'),
        force=dict(type='bool', default=False),
    )
    argument_spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('src', 'content')], required_one_of=[('src', 'content')])

    tmp = None
    path = module.params['src']
    if module.params['content'] is not None:
        fd, tmp = tempfile.mkstemp(prefix='vgpu-host.', suffix='.yaml', dir=module.tmpdir)
        with os.fdopen(fd, 'w') as f:
            f.write(module.params['content'])
        path = tmp
    args = ['apply', '-f', path] + (['--force'] if module.params['force'] else [])

    result = dict(changed=False)
    if module._diff:
        # vgpuctl's plan as a diff, before anything is done; empty when the host matches
        rc, text, err = run(module, args + ['--dry-run', '--diff'])
        plan_only = run_json(module, args + ['--dry-run'])[1]
        if plan_only['changes'] > 0:
            result['diff'] = dict(prepared=text)
    # Not skipped when the dry run finds nothing to do: apply also saves the file as the host's
    # configuration for the boot restore, and vgpuctl makes a matching host a no-op.
    rc, plan = run_json(module, args + (['--dry-run'] if module.check_mode else []))
    result['plan'] = plan
    result['changed'] = plan['changes'] > 0
    module.exit_json(**result)


if __name__ == '__main__':
    main()

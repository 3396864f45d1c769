#!/usr/bin/python
# SPDX-License-Identifier: LGPL-2.1-or-later
# vgpu_session: a session placed on the fleet (present) or released (absent) through vgpu-broker,
# named by its idempotency key. What exists is read from `vgpuctl fleet sessions --json`; a
# placement is `vgpuctl fleet place --key KEY --json`, a release `vgpuctl fleet release ID --json`.
# Check mode asks the broker where it would place (`vgpuctl fleet explain --json`) and claims
# nothing.
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: vgpu_session
short_description: Place or release a GPU session on the fleet through vgpu-broker
version_added: "1.1.0"
description:
  - A session is a vGPU instance, a software slice or any vGPU with enough memory, placed by
    vgpu-broker on the fleet's GPU with the lowest VRAM utilization and realized by that host's
    vgpud.
  - Idempotent by O(idempotency_key), which names the session; the same key places once, however
    often the task runs. The other options are used only when the session is placed.
  - Check mode asks the broker where the session would go (its placement explanation) and claims
    nothing; it fails when no GPU fits, as the real run would.
options:
  idempotency_key:
    description: The session's name for the broker; a retried or repeated placement with the same key finds the same session.
    type: str
    required: true
  state:
    description: Whether the session exists.
    type: str
    choices: [present, absent]
    default: present
  vram:
    description: Any vGPU type or slice with at least this much memory (C(4G)). One of O(vram), O(type) or O(memory) with O(state=present).
    type: str
  type:
    description: A vGPU type by name (C(nvidia-234)).
    type: str
  memory:
    description: A software slice with this much memory (C(2G)); with O(share).
    type: str
  share:
    description: The slice's share of GPU time in percent (C(30) or C(30%)).
    type: str
  user:
    description: Who the session is for (the broker's default is the caller's uid).
    type: str
  tenant:
    description: The tenant whose quota it counts against.
    type: str
  models:
    description: Only GPUs of these models.
    type: list
    elements: str
    default: []
  prefer:
    description: Hosts, GPUs or models preferred, in order.
    type: list
    elements: str
    default: []
  domain:
    description: The libvirt domain the host attaches the vGPU to.
    type: str
  broker:
    description: The broker, C(http(s)://HOST:PORT) or its UNIX socket path; vgpuctl's default (C($VGPU_BROKER), else C(/run/vgpu-broker/api.sock)) when left out.
    type: str
  token:
    description: The bearer token a TCP broker started with C(--token-file) wants.
    type: str
extends_documentation_fragment:
  - vgpuctl.vgpu.vgpuctl
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
author:
  - vgpuctl maintainers (@vgpuctl)
'''

EXAMPLES = r'''
- name: A 4 GiB vGPU for alice, wherever the fleet has room
  vgpuctl.vgpu.vgpu_session:
    idempotency_key: alice-desktop
    user: alice
    vram: 4G

- name: A slice on a T4, through a remote broker
  vgpuctl.vgpu.vgpu_session:
    idempotency_key: ci-runner-7
    memory: 2G
    share: 30%
    models: [Tesla T4]
    broker: https://broker.example:8442
    token: "{{ broker_token }}"

- name: Release alice's session
  vgpuctl.vgpu.vgpu_session:
    idempotency_key: alice-desktop
    state: absent
'''

RETURN = r'''
session:
  description: The session as C(vgpuctl fleet sessions --json) shows it (session, host, gpu, state, claim, type, vram_bytes...); null when absent.
  returned: always
  type: dict
placement:
  description: In check mode, where the broker would place the session (the best fit of its explanation).
  returned: when a session would be placed in check mode
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vgpuctl.vgpu.plugins.module_utils.vgpuctl import COMMON_ARGS, run_json

# what the diff shows of a session: where it is and what it holds
SHOWN = ('session', 'user', 'tenant', 'host', 'gpu', 'kind', 'type', 'vram_bytes', 'share_percent', 'state')


def find(module, key):
    rc, sessions = run_json(module, ['fleet', 'sessions'])
    for s in sessions:
        # a session being released is going: placing the key again is a new session
        if s.get('idempotency_key') == key and s.get('state') not in ('RELEASING', 'RELEASED'):
            return s
    return None


def shown(s):
    return dict((k, s.get(k)) for k in SHOWN if s and s.get(k) is not None)


def request_args(p):
    args = []
    for opt in ('vram', 'type', 'memory', 'share', 'user', 'tenant', 'domain'):
        if p[opt] is not None:
            args += ['--' + opt, p[opt]]
    for m in p['models']:
        args += ['--model', m]
    for m in p['prefer']:
        args += ['--prefer', m]
    return args


def main():
    argument_spec = dict(
        idempotency_key=dict(type='str', required=True, no_log=False),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        vram=dict(type='str'),
        type=dict(type='str'),
        memory=dict(type='str'),
        share=dict(type='str'),
        user=dict(type='str'),
        tenant=dict(type='str'),
        models=dict(type='list', elements='str', default=[]),
        prefer=dict(type='list', elements='str', default=[]),
        domain=dict(type='str'),
        broker=dict(type='str'),
        token=dict(type='str', no_log=True),
    )
    argument_spec.update(COMMON_ARGS)
    del argument_spec['root']  # the fleet is not under a VGPU_ROOT
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('vram', 'type', 'memory')],
                           required_by={'share': 'memory'})
    p = module.params
    key = p['idempotency_key']
    have = find(module, key)

    if p['state'] == 'absent':
        if have is None:
            module.exit_json(changed=False, session=None)
        changed = True
        if not module.check_mode:
            rc, outcome = run_json(module, ['fleet', 'release', have['session']])
            changed = bool(outcome.get('changed', True))
        module.exit_json(changed=changed, session=None, diff=dict(before=shown(have), after={}))

    if have is not None:
        module.exit_json(changed=False, session=have)
    if not (p['vram'] or p['type'] or p['memory']):
        module.fail_json(msg='one of vram, type or memory is needed to place session %s' % key)

    if module.check_mode:
        rc, why = run_json(module, ['fleet', 'explain'] + request_args(p))
        fits = why.get('fits') or []
        if not fits:
            rejected = ', '.join('%s %d' % (r['filter'], r['rejected_gpus'])
                                 for r in why.get('rejected', []) if r.get('rejected_gpus'))
            module.fail_json(msg='no GPU of %d fits session %s (rejected by: %s)'
                             % (why.get('candidates', 0), key, rejected or 'none'), explain=why)
        best = fits[0]
        after = dict(user=p['user'], tenant=p['tenant'], host=best.get('host'), gpu=best.get('gpu'),
                     kind=best.get('kind'), type=best.get('type'), vram_bytes=best.get('vram_bytes'),
                     state='PENDING')
        module.exit_json(changed=True, session=None, placement=best,
                         diff=dict(before={}, after=dict((k, v) for k, v in after.items() if v is not None)))

    rc, placed = run_json(module, ['fleet', 'place', '--key', key] + request_args(p))
    module.exit_json(changed=True, session=placed, diff=dict(before={}, after=shown(placed)))


if __name__ == '__main__':
    main()

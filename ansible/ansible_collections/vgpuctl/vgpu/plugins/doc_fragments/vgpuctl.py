# SPDX-License-Identifier: LGPL-2.1-or-later
# The options every module of this collection shares (module_utils/vgpuctl.py's COMMON_ARGS),
# documented once: extends_documentation_fragment vgpuctl.vgpu.vgpuctl for the program, and
# vgpuctl.vgpu.vgpuctl.root for the modules that work on one host's tree (not vgpu_session).
from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r'''
options:
  vgpuctl:
    description: The vgpuctl program (a name looked up in PATH and /usr/sbin, or a path).
    type: path
    default: vgpuctl
'''

    ROOT = r'''
options:
  root:
    description:
      - Work on the host under this directory instead of C(/) (vgpuctl's C(VGPU_ROOT)); for tests
        on fixture trees and unpacked reports.
    type: path
'''

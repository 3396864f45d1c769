/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * daemon-client.h — the changing verbs (create, remove, apply) through vgpud when it runs.
 *
 * Each call below first decides whether the daemon is there: --direct says never, else its
 * socket ($VGPUD_SOCKET, or /run/vgpud/vgpud.sock under VGPU_ROOT) must accept a connection.
 * When it does not (no socket file, or a stale one: ENOENT, ECONNREFUSED) the call returns
 * DAEMON_DIRECT and the verb runs in this process as it always did; with --daemon that is an
 * error instead. When it does, the request goes out, the daemon renders the answer with the
 * printers a direct run uses (in the text or JSON form this command line asked for), and it is
 * printed as it came, an error as "vgpuctl: MESSAGE" (exit 1), a 403 as "vgpud refused: USER is
 * neither root nor in group GROUP" (exit 1).
 */
#pragma once

#include <stdbool.h>

/* libcurl: curl_load(), shared with `vgpuctl fleet` (which talks to vgpu-broker) and libvgpu's
 * etcd client */
#include "basic/curl-dl.h"
#include "vgpu/harden.h"
#include "vgpu/lifecycle.h"
#include "vgpuctl.h"

#define DAEMON_SOCKET_ENV  "VGPUD_SOCKET"           /* a path used as given (not under VGPU_ROOT) */
#define DAEMON_TIMEOUT_ENV "VGPUCTL_DAEMON_TIMEOUT" /* seconds to wait for vgpud's answer (300) */

enum { DAEMON_DIRECT = -1 }; /* "no daemon: run the verb here" (every other return is an exit status) */

/* POST /v1/instances with spec (as the command line gave it) and the --persist flag. */
int daemon_create(const struct cli *cli, const struct vgpu_mdev_spec *spec, bool persist);
/* DELETE /v1/instances/ID. */
int daemon_remove(const struct cli *cli, const char *id);
/* POST /v1/apply with the text of the file named source (for messages). */
int daemon_apply(const struct cli *cli, const char *text, const char *source, bool dry_run, bool force,
                 bool diff);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * http.h — the listeners: libmicrohttpd daemons on sockets we create (the local UNIX socket,
 * the optional TCP API and metrics ports), run from the sd-event loop through MHD's epoll fd.
 */
#pragma once

#include "api.h"
#include "vgpud.h"

struct listener;

/* The local API socket at config->socket_path (under VGPU_ROOT). Refuses when another daemon
 * answers on it; a stale socket file is replaced. */
int listener_open_local(struct vgpud *d, struct listener **ret);
/* A TCP listener (the broker's API or metrics) at a. */
int listener_open_tcp(struct vgpud *d, enum listener_kind kind, const struct vgpud_addr *a,
                      struct listener **ret);
/* Stop accepting; connections already open are served to their end. */
void listener_quiesce(struct listener *l);
unsigned listener_connections(const struct listener *l);
/* What it listens on, for logs: "/run/vgpud/vgpud.sock", "127.0.0.1:9835". */
const char *listener_name(const struct listener *l);
struct listener *listener_free(struct listener *l);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * auth.h — who may do what through the API.
 *
 * On the local socket the kernel tells us who is calling (SO_PEERCRED, SO_PEERGROUPS): root
 * and members of the configured group may change things, everyone else may read. On the TCP
 * listener the only identity is the bearer token. The decisions are pure functions of those
 * facts, so tests can hand them any credentials.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum vgpud_access {
        ACCESS_NONE, /* not even reading (TCP without a valid token) */
        ACCESS_READ,
        ACCESS_WRITE,
};

#define PEER_GROUPS_MAX 64

struct vgpud_peer {
        pid_t pid;
        uid_t uid;
        gid_t gid;
        gid_t groups[PEER_GROUPS_MAX]; /* supplementary groups */
        size_t n_groups;
};

/* The caller on a connected UNIX socket. 0 or -errno. */
int auth_peer_from_fd(int fd, struct vgpud_peer *ret);

/* Root, or a member of group (primary or supplementary) may write; with have_group false (the
 * group does not exist on this host) only root may. Everyone else reads. */
enum vgpud_access auth_access_for_peer(const struct vgpud_peer *peer, bool have_group, gid_t group);

/* "Authorization: Bearer TOKEN" against the configured token, in constant time. A NULL or
 * empty expected token never matches. */
enum vgpud_access auth_access_for_bearer(const char *authorization_header, const char *expected_token);

const char *auth_access_to_string(enum vgpud_access a);

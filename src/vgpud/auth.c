/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* auth.c — the caller's credentials and what they allow (see auth.h). */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "auth.h"

int auth_peer_from_fd(int fd, struct vgpud_peer *ret) {
        struct ucred cred;
        socklen_t len = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return -errno;
        struct vgpud_peer p = { .pid = cred.pid, .uid = cred.uid, .gid = cred.gid };
        /* The supplementary groups as they were when the caller connected (Linux 4.13+). A
         * caller in more groups than we keep: ERANGE, and only the primary group counts. */
        len = sizeof(p.groups);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, p.groups, &len) == 0)
                p.n_groups = len / sizeof(gid_t);
        *ret = p;
        return 0;
}

enum vgpud_access auth_access_for_peer(const struct vgpud_peer *peer, bool have_group, gid_t group) {
        if (peer->uid == 0)
                return ACCESS_WRITE;
        if (have_group) {
                if (peer->gid == group)
                        return ACCESS_WRITE;
                for (size_t i = 0; i < peer->n_groups && i < PEER_GROUPS_MAX; i++)
                        if (peer->groups[i] == group)
                                return ACCESS_WRITE;
        }
        return ACCESS_READ;
}

enum vgpud_access auth_access_for_bearer(const char *header, const char *expected) {
        if (!header || !expected || !expected[0] || strncasecmp(header, "Bearer ", 7) != 0)
                return ACCESS_NONE;
        const char *given = header + 7;
        size_t n = strlen(expected), m = strlen(given);
        /* compare every byte whatever differs, so the time says nothing about the token */
        unsigned char diff = n != m;
        for (size_t i = 0; i < n; i++)
                diff |= (unsigned char) expected[i] ^ (unsigned char) (i < m ? given[i] : 0);
        return diff ? ACCESS_NONE : ACCESS_WRITE;
}

const char *auth_access_to_string(enum vgpud_access a) {
        return a == ACCESS_WRITE ? "read-write" : a == ACCESS_READ ? "read-only" : "none";
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * harden-ifaces.c — which interfaces face the outside when the user named none: those holding
 * a default route (IPv4 from /proc/net/route, IPv6 from /proc/net/ipv6_route, both under
 * VGPU_ROOT so a copied host answers for itself). A host reached through its default route is
 * reached from networks it does not control; an interface only for a storage or management
 * LAN has no default route. These are proposals: the audit checks them and says where they
 * came from, and --apply closes ports only on interfaces named with --public-if.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/root.h"
#include "harden-internal.h"

#define RTF_UP_FLAG     0x0001
#define RTF_REJECT_FLAG 0x0200

static int add_iface(char ***list, size_t *n, const char *name) {
        if (strcmp(name, "lo") == 0)
                return 0;
        for (size_t i = 0; i < *n; i++)
                if (strcmp((*list)[i], name) == 0)
                        return 0;
        char **l = reallocarray(*list, *n + 2, sizeof(char *));
        if (!l)
                return -ENOMEM;
        *list = l;
        if (!(l[*n] = strdup(name)))
                return -ENOMEM;
        l[++*n] = NULL;
        return 0;
}

static FILE *open_host(const char *path) {
        char full[PATH_MAX];
        return root_path(full, sizeof(full), path) < 0 ? NULL : fopen(full, "re");
}

int harden_propose_ifaces(char ***ret, size_t *ret_n) {
        char **list = NULL, line[512];
        size_t n = 0;
        int r = 0;
        FILE *f = open_host("/proc/net/route");
        /* Iface Destination Gateway Flags RefCnt Use Metric Mask ... (hex, host byte order) */
        while (f && r >= 0 && fgets(line, sizeof(line), f)) {
                char name[IF_NAME_BUF];
                unsigned long dest, gw, mask;
                unsigned flags;
                if (sscanf(line, "%15s %lx %lx %x %*d %*d %*d %lx", name, &dest, &gw, &flags, &mask) == 5 &&
                    dest == 0 && mask == 0 && (flags & RTF_UP_FLAG) && !(flags & RTF_REJECT_FLAG))
                        r = add_iface(&list, &n, name);
        }
        if (f)
                fclose(f);
        /* dest prefix-len src prefix-len next-hop metric refcnt use flags iface */
        f = open_host("/proc/net/ipv6_route");
        while (f && r >= 0 && fgets(line, sizeof(line), f)) {
                char dest[33], name[IF_NAME_BUF];
                unsigned plen, flags;
                if (sscanf(line, "%32s %x %*s %*x %*s %*x %*x %*x %x %15s", dest, &plen, &flags, name) == 4 &&
                    plen == 0 && strspn(dest, "0") == 32 && (flags & RTF_UP_FLAG) &&
                    !(flags & RTF_REJECT_FLAG))
                        r = add_iface(&list, &n, name);
        }
        if (f)
                fclose(f);
        if (r < 0) {
                harden_ifaces_free(list);
                return r;
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

void harden_ifaces_free(char **list) {
        for (size_t i = 0; list && list[i]; i++)
                free(list[i]);
        free(list);
}

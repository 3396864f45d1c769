/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * domains.c — which libvirt domain holds each vGPU instance, from the <hostdev> sources in
 * every domain's XML, for `vgpuctl list`; and every domain that holds one device, for taking it
 * out of all of them before the device goes (vgpud's sweep of the fleet's orphans).
 *
 * Running domains are read first (their live XML: what they use now), then the configuration
 * of every persistent domain (what they will use when started), so a domain that runs with the
 * device wins over one that is merely configured with it. Within each pass domains are taken
 * by name, so the answer does not depend on libvirt's listing order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "assign-internal.h"
#include "basic/error-util.h"
#include "basic/macro.h"

/* What a domain's XML names an instance by: its UUID, or a vendor-VFIO VF's address. */
struct key {
        const char *key;
        size_t instance;
};

static int key_cmp(const void *a, const void *b) {
        return strcasecmp(((const struct key *) a)->key, ((const struct key *) b)->key);
}

struct match {
        const struct key *keys;
        size_t n_keys;
        char **result;
        const char *domain;
        bool oom;
};

static void on_key(const char *key, void *userdata) {
        struct match *m = userdata;
        const struct key *k =
                bsearch_safe(&(struct key){ .key = key }, m->keys, m->n_keys, sizeof(*m->keys), key_cmp);
        if (!k || m->result[k->instance])
                return;
        if (!(m->result[k->instance] = strdup(m->domain)))
                m->oom = true;
}

static int name_cmp(const void *a, const void *b, void *userdata) {
        const struct virt_dl *dl = userdata;
        return strcmp(dl->virDomainGetName(*(virDomainPtr const *) a),
                      dl->virDomainGetName(*(virDomainPtr const *) b));
}

_public_ void vgpu_instance_domains_free(char **domains, size_t n) {
        for (size_t i = 0; domains && i < n; i++)
                free(domains[i]);
        free(domains);
}

static int scan(const struct virt_dl *dl, virDomainPtr *doms, int n_doms, struct match *m,
                struct vgpu_error *err) {
        for (int pass = 0; pass < 2; pass++)
                for (int i = 0; i < n_doms; i++) {
                        int active = dl->virDomainIsActive(doms[i]),
                            persistent = dl->virDomainIsPersistent(doms[i]);
                        /* pass 0: what running domains use; pass 1: every configuration */
                        if (pass == 0 ? active != 1 : persistent != 1)
                                continue;
                        m->domain = dl->virDomainGetName(doms[i]);
                        char *xml = dl->virDomainGetXMLDesc(doms[i], pass == 0 ? 0 : VIR_DOMAIN_XML_INACTIVE);
                        if (!xml) /* undefined meanwhile: it holds nothing */
                                continue;
                        int r = domain_xml_keys(dl, xml, on_key, m);
                        free(xml);
                        if (r < 0)
                                return vgpu_error_set(err, r,
                                                      "the XML libvirt gave for domain '%s' does not parse",
                                                      m->domain);
                        if (m->oom)
                                return vgpu_error_set(err, -ENOMEM, "out of memory");
                }
        return 0;
}

/* The domains holding keys[] (sorted by key): n_results names, NULL where none. */
static int domains_of(struct vgpu_virt *v, struct key *keys, size_t n_keys, size_t n_results, char ***ret,
                      struct vgpu_error *err) {
        const struct virt_dl *dl = v->dl;
        char **result = calloc(n_results + 1, sizeof(*result));
        if (!result)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        qsort_safe(keys, n_keys, sizeof(*keys), key_cmp);

        virDomainPtr *doms = NULL;
        int n_doms = dl->virConnectListAllDomains(v->conn, &doms, 0);
        if (n_doms < 0) {
                free(result);
                return vgpu_error_set(err, -EIO, "listing libvirt's domains: %s", virt_dl_last_error(dl));
        }
        if (n_doms > 1)
                qsort_r(doms, (size_t) n_doms, sizeof(*doms), name_cmp, (void *) dl);

        struct match m = { .keys = keys, .n_keys = n_keys, .result = result };
        int r = scan(dl, doms, n_doms, &m, err);
        for (int i = 0; i < n_doms; i++)
                dl->virDomainFree(doms[i]);
        free(doms);
        if (r < 0) {
                vgpu_instance_domains_free(result, n_results);
                return r;
        }
        *ret = result;
        return 0;
}

_public_ int vgpu_instance_domains(struct vgpu_virt *v, const struct vgpu_host *host, char ***ret,
                                   struct vgpu_error *err) {
        _cleanup_free_ struct key *keys = calloc(host->n_instances + 1, sizeof(*keys));
        if (!keys)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        size_t n_keys = 0;
        for (size_t i = 0; i < host->n_instances; i++) {
                const struct vgpu_instance *in = &host->instances[i];
                const char *k = in->kind == VGPU_TYPE_NVIDIA_VFIO ? in->parent : in->uuid;
                if (k && *k)
                        keys[n_keys++] = (struct key){ k, i };
        }
        return domains_of(v, keys, n_keys, host->n_instances, ret, err);
}

/* A GPU or VF handed to a VM whole (<hostdev type='pci'>, e.g. a plain SR-IOV VF) is held by
 * it as an instance is: `list` shows that too. */
_public_ int vgpu_gpu_domains(struct vgpu_virt *v, const struct vgpu_host *host, char ***ret,
                              struct vgpu_error *err) {
        _cleanup_free_ struct key *keys = calloc(host->n_gpus + 1, sizeof(*keys));
        if (!keys)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        for (size_t i = 0; i < host->n_gpus; i++)
                keys[i] = (struct key){ host->gpus[i].bdf, i };
        return domains_of(v, keys, host->n_gpus, host->n_gpus, ret, err);
}

/* Every domain holding dev: its live XML when it runs, its configuration when it is persistent
 * (a running domain may hold it in one and not the other). In name order, each once. */
_public_ int vgpu_hostdev_domains(struct vgpu_virt *v, const struct vgpu_hostdev *dev, char ***ret,
                                  size_t *ret_n, struct vgpu_error *err) {
        const struct virt_dl *dl = v->dl;
        virDomainPtr *doms = NULL;
        int n_doms = dl->virConnectListAllDomains(v->conn, &doms, 0);
        if (n_doms < 0)
                return vgpu_error_set(err, -EIO, "listing libvirt's domains: %s", virt_dl_last_error(dl));
        if (n_doms > 1)
                qsort_r(doms, (size_t) n_doms, sizeof(*doms), name_cmp, (void *) dl);
        char **result = calloc((size_t) n_doms + 1, sizeof(*result));
        size_t n = 0;
        int r = result ? 0 : vgpu_error_set(err, -ENOMEM, "out of memory");
        for (int i = 0; r >= 0 && i < n_doms; i++) {
                const char *name = dl->virDomainGetName(doms[i]);
                int held = 0;
                for (int pass = 0; pass < 2 && held == 0; pass++) {
                        /* pass 0: what it uses now, if it runs; pass 1: its configuration */
                        if ((pass == 0 ? dl->virDomainIsActive(doms[i])
                                       : dl->virDomainIsPersistent(doms[i])) != 1)
                                continue;
                        char *xml = dl->virDomainGetXMLDesc(doms[i], pass == 0 ? 0 : VIR_DOMAIN_XML_INACTIVE);
                        if (!xml) /* undefined meanwhile: it holds nothing */
                                continue;
                        held = domain_xml_holds(dl, xml, dev);
                        free(xml);
                }
                if (held < 0)
                        r = vgpu_error_set(err, held, "the XML libvirt gave for domain '%s' does not parse",
                                           name);
                else if (held > 0 && !(result[n++] = strdup(name)))
                        r = vgpu_error_set(err, -ENOMEM, "out of memory");
        }
        for (int i = 0; i < n_doms; i++)
                dl->virDomainFree(doms[i]);
        free(doms);
        if (r < 0) {
                vgpu_instance_domains_free(result, n);
                return r;
        }
        *ret = result;
        *ret_n = n;
        return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fleet.c — `vgpuctl fleet hosts|gpus|sessions|place|release|cordon|uncordon|drain|explain`:
 * the fleet through vgpu-broker's API (doc/fleet.md). The broker is --broker (a URL or a UNIX
 * socket path), else $VGPU_BROKER, else /run/vgpu-broker/api.sock; $VGPU_BROKER_TOKEN is sent as
 * the bearer token over TCP, $VGPU_BROKER_CA is the CA file that an https broker's certificate
 * is checked against (else the system's). --json prints the broker's JSON as it came (doc/schema/broker-*).
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "daemon-client.h"
#include "vgpu/slice.h"
#include "vgpuctl.h"

#define BROKER_ENV       "VGPU_BROKER"
#define BROKER_TOKEN_ENV "VGPU_BROKER_TOKEN"
#define BROKER_CA_ENV    "VGPU_BROKER_CA" /* PEM file of the CA that signed an https broker's certificate */
#define BROKER_SOCKET    "/run/vgpu-broker/api.sock"

enum {
        OPT_BROKER,
        OPT_USER,
        OPT_TENANT,
        OPT_VRAM,
        OPT_TYPE,
        OPT_MEMORY,
        OPT_SHARE,
        OPT_MODEL,
        OPT_PREFER,
        OPT_DOMAIN,
        OPT_KEY
};

const struct cli_option fleet_options[] = {
        [OPT_BROKER] = { "broker", 'b', "URL|SOCKET",
                         "the broker: http(s)://HOST:PORT or a socket path (default $" BROKER_ENV
                         ", else " BROKER_SOCKET ")" },
        [OPT_USER] = { "user", 0, "NAME", "who the session is for (place; default: your uid)" },
        [OPT_TENANT] = { "tenant", 0, "NAME", "the tenant whose quota it counts against (place)" },
        [OPT_VRAM] = { "vram", 0, "SIZE", "any vGPU type or slice with this much memory, e.g. 4G (place)" },
        [OPT_TYPE] = { "type", 't', "TYPE", "a vGPU type by name (place)" },
        [OPT_MEMORY] = { "memory", 'm', "SIZE", "a slice with this much memory (place)" },
        [OPT_SHARE] = { "share", 's', "PERCENT", "the slice's share of GPU time (place, with --memory)" },
        [OPT_MODEL] = { "model", 0, "MODEL", "only GPUs of this model; repeat for any of several (place)" },
        [OPT_PREFER] = { "prefer", 0, "NAME",
                         "a host, GPU or model preferred, in order; repeatable (place)" },
        [OPT_DOMAIN] = { "domain", 0, "DOMAIN", "the libvirt domain the host attaches the vGPU to (place)" },
        [OPT_KEY] = { "key", 'k', "KEY",
                      "idempotency key: the same key places once (place; default random)" },
        {},
};

struct reply {
        long status;
        char *body;
        size_t size;
        json_object *json;
};

static void reply_done(struct reply *r) {
        free(r->body);
        json_object_put(r->json);
}

static size_t collect(char *data, size_t size, size_t n, void *userdata) {
        return fwrite(data, size, n, userdata) * size;
}

static int call(const struct cli *cli, const char *method, const char *path, const char *body,
                struct reply *ret) {
        char why[512];
        const char *broker = cli->opt[OPT_BROKER] ? cli->opt[OPT_BROKER] : getenv(BROKER_ENV);
        if (!broker || !*broker)
                broker = BROKER_SOCKET;
        bool url = strncmp(broker, "http://", 7) == 0 || strncmp(broker, "https://", 8) == 0;
        const struct curl_dl *c = curl_load(why, sizeof(why));
        if (!c)
                return cli_error(EXIT_FAILED, "%s", why);
        char *full = NULL, *auth = NULL;
        FILE *out = open_memstream(&ret->body, &ret->size);
        CURL *h = c->easy_init();
        struct curl_slist *headers = c->slist_append(NULL, "Content-Type: application/json");
        const char *token = getenv(BROKER_TOKEN_ENV);
        if (url && token && *token && asprintf(&auth, "Authorization: Bearer %s", token) > 0)
                c->slist_append(headers, auth);
        if (asprintf(&full, "%s%s", url ? broker : "http://localhost", path) < 0)
                full = NULL;
        CURLcode cr = CURLE_OUT_OF_MEMORY;
        if (out && h && headers && full) {
                c->easy_setopt(h, CURLOPT_URL, full);
                if (!url)
                        c->easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, broker);
                const char *ca = getenv(BROKER_CA_ENV);
                if (url && ca && *ca)
                        c->easy_setopt(h, CURLOPT_CAINFO, ca);
                c->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
                c->easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
                c->easy_setopt(h, CURLOPT_TIMEOUT, 60L);
                c->easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
                c->easy_setopt(h, CURLOPT_HTTPHEADER, headers);
                if (body)
                        c->easy_setopt(h, CURLOPT_POSTFIELDS, body);
                else if (strcmp(method, "POST") == 0)
                        c->easy_setopt(h, CURLOPT_POSTFIELDS, "");
                c->easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
                c->easy_setopt(h, CURLOPT_WRITEDATA, out);
                cr = c->easy_perform(h);
                c->easy_getinfo(h, CURLINFO_RESPONSE_CODE, &ret->status);
        }
        if (h)
                c->easy_cleanup(h);
        c->slist_free_all(headers);
        free(full);
        free(auth);
        if (out)
                fclose(out);
        if (cr != CURLE_OK)
                return cli_error(EXIT_FAILED, "vgpu-broker at %s: %s (--broker or $%s names another)", broker,
                                 c->easy_strerror(cr), BROKER_ENV);
        ret->json = ret->body ? json_tokener_parse(ret->body) : NULL;
        if (!ret->json)
                return cli_error(EXIT_FAILED, "vgpu-broker answered HTTP %ld without JSON", ret->status);
        return EXIT_OK;
}

static const char *str(json_object *o, const char *k) {
        json_object *v;
        return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

static int64_t num(json_object *o, const char *k) {
        json_object *v;
        return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_int)
                       ? json_object_get_int64(v)
                       : 0;
}

static bool flag(json_object *o, const char *k) {
        json_object *v;
        return json_object_object_get_ex(o, k, &v) && json_object_get_boolean(v);
}

/* An error reply: its message, and for a 503 of a full fleet what each filter rejected. */
static int fail(const struct reply *r) {
        json_object *rej;
        if (json_object_object_get_ex(r->json, "rejected", &rej) &&
            json_object_is_type(rej, json_type_array)) {
                fprintf(stderr, "vgpuctl: %s; GPUs rejected by:", str(r->json, "error") ?: "no capacity");
                for (size_t i = 0; i < json_object_array_length(rej); i++) {
                        json_object *x = json_object_array_get_idx(rej, i);
                        if (num(x, "rejected_gpus") > 0)
                                fprintf(stderr, " %s %" PRId64, str(x, "filter"), num(x, "rejected_gpus"));
                }
                fputc('\n', stderr);
                return EXIT_FAILED;
        }
        return cli_error(EXIT_FAILED, "%s", str(r->json, "error") ?: "vgpu-broker failed");
}

static int print_json(const struct cli *cli, json_object *o) {
        puts(json_object_to_json_string_ext(
                o,
                (cli->pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED : JSON_C_TO_STRING_PLAIN) |
                        JSON_C_TO_STRING_NOSLASHESCAPE));
        return EXIT_OK;
}

static const char *bytes(char *buf, size_t size, int64_t v) {
        return format_bytes(buf, size, v);
}

/* tables take only %s cells (output-table.c): numbers as text */
static const char *dec(char *buf, size_t size, int64_t v) {
        snprintf(buf, size, "%" PRId64, v);
        return buf;
}

static void table_hosts(struct out *o, json_object *a) {
        char t[32], c[32], g[24], n[24];
        out_text(o, "%-16s %-6s %-9s %5s %8s %10s %10s\n", "HOST", "ALIVE", "CORDON", "GPUS", "SESSIONS",
                 "CLAIMED", "VRAM");
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *h = json_object_array_get_idx(a, i);
                out_text(o, "%-16s %-6s %-9s %5s %8s %10s %10s\n", str(h, "host"),
                         flag(h, "alive") ? "yes" : "no",
                         flag(h, "draining")   ? "draining"
                         : flag(h, "cordoned") ? "cordoned"
                                               : "-",
                         dec(g, sizeof(g), num(h, "gpus_total")), dec(n, sizeof(n), num(h, "sessions")),
                         bytes(c, sizeof(c), num(h, "vram_claimed_bytes")),
                         bytes(t, sizeof(t), num(h, "vram_total_bytes")));
        }
        if (json_object_array_length(a) == 0)
                out_text(o, "(no hosts)\n");
}

static void table_gpus(struct out *o, json_object *a) {
        char t[32], c[32], n[24];
        out_text(o, "%-16s %-24s %-18s %-6s %-9s %10s %10s %-14s %8s\n", "HOST", "GPU", "MODEL", "MODE",
                 "HEALTH", "CLAIMED", "VRAM", "TYPE-LOCK", "SESSIONS");
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *g = json_object_array_get_idx(a, i);
                out_text(o, "%-16s %-24s %-18s %-6s %-9s %10s %10s %-14s %8s\n", str(g, "host"),
                         str(g, "gpu"), str(g, "model") ?: "-", str(g, "mode"),
                         flag(g, "degraded") ? "degraded" : "ok",
                         bytes(c, sizeof(c), num(g, "vram_claimed_bytes")),
                         bytes(t, sizeof(t), num(g, "vram_total_bytes")), str(g, "type_lock") ?: "-",
                         dec(n, sizeof(n), num(g, "sessions")));
        }
        if (json_object_array_length(a) == 0)
                out_text(o, "(no GPUs)\n");
}

static void session_row(struct out *o, json_object *s) {
        char v[32];
        out_text(o, "%-32s %-12s %-10s %-16s %-24s %-9s %-14s %10s\n", str(s, "session"), str(s, "user") ?: "-",
                 str(s, "tenant") ?: "-", str(s, "host") ?: "-", str(s, "gpu") ?: "-", str(s, "state"),
                 str(s, "type") ?: str(s, "kind") ?: "-", bytes(v, sizeof(v), num(s, "vram_bytes")));
}

static void table_sessions(struct out *o, json_object *a) {
        out_text(o, "%-32s %-12s %-10s %-16s %-24s %-9s %-14s %10s\n", "SESSION", "USER", "TENANT", "HOST",
                 "GPU", "STATE", "TYPE", "VRAM");
        for (size_t i = 0; i < json_object_array_length(a); i++)
                session_row(o, json_object_array_get_idx(a, i));
        if (json_object_array_length(a) == 0)
                out_text(o, "(no sessions)\n");
}

static void table_explain(struct out *o, json_object *e) {
        char v[32], n[24];
        json_object *fits = json_object_object_get(e, "fits"), *rej = json_object_object_get(e, "rejected");
        out_text(o, "%-16s %-24s %-18s %-14s %10s %11s %8s\n", "HOST", "GPU", "MODEL", "TYPE", "VRAM",
                 "UTIL-AFTER", "SESSIONS");
        for (size_t i = 0; fits && i < json_object_array_length(fits); i++) {
                json_object *f = json_object_array_get_idx(fits, i);
                char util[16];
                snprintf(util, sizeof(util), "%" PRId64 "%%", num(f, "utilization_after_percent"));
                out_text(o, "%-16s %-24s %-18s %-14s %10s %11s %8s\n", str(f, "host"), str(f, "gpu"),
                         str(f, "model") ?: "-", str(f, "type") ?: str(f, "kind"),
                         bytes(v, sizeof(v), num(f, "vram_bytes")), util,
                         dec(n, sizeof(n), num(f, "sessions")));
        }
        if (!fits || json_object_array_length(fits) == 0)
                out_text(o, "(no GPU can take it)\n");
        out_text(o, "\n");
        out_text(o, "%-12s %8s\n", "FILTER", "REJECTED");
        for (size_t i = 0; rej && i < json_object_array_length(rej); i++) {
                json_object *x = json_object_array_get_idx(rej, i);
                out_text(o, "%-12s %8s\n", str(x, "filter"), dec(n, sizeof(n), num(x, "rejected_gpus")));
        }
}

static int parse_size(const char *opt, const char *s, uint64_t *ret) {
        if (vgpu_slice_parse_memory(s, ret) < 0 || *ret == 0)
                return cli_error(EXIT_USAGE, "--%s '%s': expected a size like 4G or 512M", opt, s);
        return EXIT_OK;
}

/* The placement body from the options. */
static int place_body(const struct cli *cli, bool need_key, char **ret) {
        json_object *o = json_object_new_object();
        uint64_t size;
        int r = EXIT_OK;
        if (cli->opt[OPT_USER])
                json_object_object_add(o, "user", json_object_new_string(cli->opt[OPT_USER]));
        if (cli->opt[OPT_TENANT])
                json_object_object_add(o, "tenant", json_object_new_string(cli->opt[OPT_TENANT]));
        if (cli->opt[OPT_TYPE])
                json_object_object_add(o, "type", json_object_new_string(cli->opt[OPT_TYPE]));
        if (cli->opt[OPT_VRAM] && (r = parse_size("vram", cli->opt[OPT_VRAM], &size)) == EXIT_OK)
                json_object_object_add(o, "vram_bytes", json_object_new_int64((int64_t) size));
        if (r == EXIT_OK && cli->opt[OPT_MEMORY] &&
            (r = parse_size("memory", cli->opt[OPT_MEMORY], &size)) == EXIT_OK)
                json_object_object_add(o, "memory_bytes", json_object_new_int64((int64_t) size));
        if (r == EXIT_OK && cli->opt[OPT_SHARE]) {
                char *end;
                long v = strtol(cli->opt[OPT_SHARE], &end, 10);
                if (end == cli->opt[OPT_SHARE] || (*end && strcmp(end, "%")) || v < 1 || v > 100)
                        r = cli_error(EXIT_USAGE, "--share '%s': expected a percentage from 1 to 100",
                                      cli->opt[OPT_SHARE]);
                else
                        json_object_object_add(o, "share_percent", json_object_new_int((int) v));
        }
        if (r == EXIT_OK && !!cli->opt[OPT_TYPE] + !!cli->opt[OPT_VRAM] + !!cli->opt[OPT_MEMORY] != 1)
                r = cli_error(EXIT_USAGE, "give one of --type, --vram or --memory");
        for (int k = 0; r == EXIT_OK && k < 2; k++) {
                int opt = k ? OPT_PREFER : OPT_MODEL;
                if (!cli->n_opt[opt])
                        continue;
                json_object *a = json_object_new_array();
                for (int i = 0; i < cli->n_opt[opt]; i++)
                        json_object_array_add(a, json_object_new_string(cli->opt_all[opt][i]));
                json_object_object_add(o, k ? "prefer" : "models", a);
        }
        if (cli->opt[OPT_DOMAIN])
                json_object_object_add(o, "domain", json_object_new_string(cli->opt[OPT_DOMAIN]));
        if (need_key) {
                char key[40];
                if (!cli->opt[OPT_KEY]) {
                        /* a fresh key per invocation: rerun with --key to retry one placement */
                        uint8_t rnd[16];
                        if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
                                r = cli_error(EXIT_FAILED,
                                              "no randomness for an idempotency key: give --key");
                        for (size_t i = 0; i < sizeof(rnd); i++)
                                snprintf(key + 2 * i, 3, "%02x", rnd[i]);
                }
                json_object_object_add(o, "idempotency_key",
                                       json_object_new_string(cli->opt[OPT_KEY] ? cli->opt[OPT_KEY] : key));
        }
        if (r == EXIT_OK)
                *ret = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return r;
}

static bool place_option_given(const struct cli *cli) {
        for (int i = OPT_USER; i <= OPT_KEY; i++)
                if (cli->opt[i])
                        return true;
        return false;
}

int verb_fleet(struct cli *cli) {
        static const char *const reads[] = { "hosts", "gpus", "sessions" };
        const char *sub = cli->argv[0], *arg = cli->argc > 1 ? cli->argv[1] : NULL;
        bool host_verb = !strcmp(sub, "cordon") || !strcmp(sub, "uncordon") || !strcmp(sub, "drain");
        bool placing = !strcmp(sub, "place") || !strcmp(sub, "explain");
        struct reply r = {};
        int k;
        if (!placing && place_option_given(cli))
                return cli_error(EXIT_USAGE,
                                 "'fleet %s' takes no placement options (only place and explain do)", sub);
        for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
                if (!strcmp(sub, reads[i])) {
                        if (arg)
                                return cli_error(EXIT_USAGE, "'fleet %s' takes no argument", sub);
                        char path[32];
                        snprintf(path, sizeof(path), "/v1/%s", sub);
                        if ((k = call(cli, "GET", path, NULL, &r)) != EXIT_OK || r.status != 200) {
                                k = k != EXIT_OK ? k : fail(&r);
                                reply_done(&r);
                                return k;
                        }
                        if (cli->json)
                                k = print_json(cli, r.json);
                        else {
                                struct out *o = cli_out_table(cli);
                                if (i == 0)
                                        table_hosts(o, r.json);
                                else if (i == 1)
                                        table_gpus(o, r.json);
                                else
                                        table_sessions(o, r.json);
                                out_free(o);
                        }
                        reply_done(&r);
                        return k;
                }
        if (placing) {
                char *body = NULL;
                if (arg)
                        return cli_error(EXIT_USAGE, "'fleet %s' takes no argument: options say what", sub);
                if ((k = place_body(cli, !strcmp(sub, "place"), &body)) != EXIT_OK)
                        return k;
                k = call(cli, "POST", !strcmp(sub, "place") ? "/v1/sessions" : "/v1/placement/explain", body,
                         &r);
                free(body);
                if (k == EXIT_OK && r.status != 200 && r.status != 201)
                        k = fail(&r);
                else if (k == EXIT_OK && cli->json)
                        k = print_json(cli, r.json);
                else if (k == EXIT_OK && !strcmp(sub, "explain")) {
                        struct out *o = cli_out_table(cli);
                        table_explain(o, r.json);
                        out_free(o);
                } else if (k == EXIT_OK)
                        printf("%s session %s on %s GPU %s (claim %s, %s)\n",
                               r.status == 201 ? "placed" : "already placed:", str(r.json, "session"),
                               str(r.json, "host"), str(r.json, "gpu"), str(r.json, "claim"),
                               str(r.json, "state"));
                reply_done(&r);
                return k;
        }
        if (!strcmp(sub, "release") || host_verb) {
                if (!arg)
                        return cli_error(EXIT_USAGE, "'fleet %s' takes %s", sub,
                                         host_verb ? "a HOST" : "a SESSION");
                char path[512];
                snprintf(path, sizeof(path), host_verb ? "/v1/hosts/%s/%s" : "/v1/sessions/%s", arg, sub);
                k = call(cli, host_verb ? "POST" : "DELETE", path, NULL, &r);
                if (k == EXIT_OK && r.status != 200)
                        k = fail(&r);
                else if (k == EXIT_OK && cli->json)
                        k = print_json(cli, r.json);
                else if (k == EXIT_OK && host_verb)
                        printf("host %s: %s%s\n", arg,
                               !strcmp(sub, "uncordon")   ? "uncordoned"
                               : flag(r.json, "draining") ? "draining"
                                                          : "cordoned",
                               num(r.json, "released") ? ", sessions released" : "");
                else if (k == EXIT_OK)
                        printf("session %s: %s\n", arg,
                               !flag(r.json, "changed") ? "released before (nothing to do)"
                               : !strcmp(str(r.json, "state") ?: "", "RELEASING")
                                       ? "RELEASING (its host tears the instance down)"
                                       : "released");
                reply_done(&r);
                return k;
        }
        return cli_error(
                EXIT_USAGE,
                "unknown fleet command '%s' (hosts, gpus, sessions, place, release, cordon, uncordon, "
                "drain, explain)",
                sub);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * conf.c — reading vgpud.conf with inih (see conf.h). inih's handler is not told the line it
 * is on, so the text is fed through our own line reader, which counts: every message then
 * names FILE:LINE, the section and the key.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vgpu/error.h"
#include "vgpu/root.h"
#include "conf.h"
#include "vgpu/harden.h"

static void strv_free_null(char **v) {
        for (char **p = v; p && *p; p++)
                free(*p);
        free(v);
}

#define UNSET INT_MIN

struct parser {
        struct vgpud_config *c;
        const char *text; /* the rest of the text to read */
        int line;         /* the line the handler is called for */
        int error_line;   /* our first error, 0 when none */
        char error[768];
        int long_line; /* first line longer than inih's buffer */
        /* per thermal section (0 = [thermal], i+1 = rules[i]): where warn/critical/hysteresis were set */
        struct {
                int line;
        } * thermal_lines;
};

/* inih's reader: one line per call, like fgets; counts lines, and notes lines it had to cut. */
static char *reader(char *str, int num, void *stream) {
        struct parser *p = stream;
        if (!*p->text)
                return NULL;
        const char *nl = strchr(p->text, '\n');
        size_t len = nl ? (size_t) (nl - p->text) + 1 : strlen(p->text);
        p->line++;
        size_t take = len < (size_t) num - 1 ? len : (size_t) num - 1;
        if (take < len && !p->long_line)
                p->long_line = p->line;
        memcpy(str, p->text, take);
        str[take] = '\0';
        p->text += len;
        return str;
}

_printf_(2, 3) static int fail(struct parser *p, const char *fmt, ...) {
        if (p->error_line)
                return 0;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->error, sizeof(p->error), fmt, ap);
        va_end(ap);
        p->error_line = p->line;
        return 0; /* inih: the handler failed */
}

static int parse_bool(const char *v, bool *ret) {
        static const char *const yes[] = { "yes", "true", "on", "1" }, *const no[] = { "no", "false", "off",
                                                                                       "0" };
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(v, yes[i]) == 0)
                        return *ret = true, 0;
                if (strcasecmp(v, no[i]) == 0)
                        return *ret = false, 0;
        }
        return -EINVAL;
}

static int parse_int(const char *v, long min, long max, int *ret) {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || end == v || *end || n < min || n > max)
                return -EINVAL;
        *ret = (int) n;
        return 0;
}

/* "500ms", "10s", "10" (seconds), "2m" */
static int parse_duration(const char *v, uint64_t *ret_usec) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (errno || end == v || v[0] == '-')
                return -EINVAL;
        uint64_t mult = streq(end, "ms")             ? 1000
                        : (!*end || streq(end, "s")) ? 1000000
                        : streq(end, "m")            ? 60000000
                                                     : 0;
        if (!mult || n > 3600ULL * 1000000 / mult)
                return -EINVAL;
        *ret_usec = n * mult;
        return 0;
}

/* "off", "127.0.0.1:9835", "[::1]:9835" */
static int parse_addr(const char *v, struct vgpud_addr *ret) {
        bool b;
        if (parse_bool(v, &b) == 0 && !b) {
                *ret = (struct vgpud_addr){};
                return 0;
        }
        struct vgpud_addr a = { .enabled = true };
        const char *colon;
        if (v[0] == '[') {
                const char *close = strchr(v, ']');
                if (!close || close[1] != ':' || (size_t) (close - v - 1) >= sizeof(a.host))
                        return -EINVAL;
                memcpy(a.host, v + 1, (size_t) (close - v - 1));
                colon = close + 1;
        } else {
                colon = strrchr(v, ':');
                if (!colon || (size_t) (colon - v) >= sizeof(a.host))
                        return -EINVAL;
                memcpy(a.host, v, (size_t) (colon - v));
        }
        unsigned char buf[16];
        int port;
        if ((inet_pton(AF_INET, a.host, buf) != 1 && inet_pton(AF_INET6, a.host, buf) != 1) ||
            parse_int(colon + 1, 0, 65535, &port) < 0)
                return -EINVAL;
        a.port = (uint16_t) port;
        *ret = a;
        return 0;
}

static int set_string(char **field, const char *v) {
        char *s = strdup(v);
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

static int set_path(struct parser *p, const char *section, const char *name, char **field, const char *v) {
        if (v[0] != '/')
                return fail(p, "[%s] %s = '%s': expected an absolute path", section, name, v);
        return set_string(field, v) < 0 ? fail(p, "out of memory") : 1;
}

#define BAD(what) fail(p, "[%s] %s = '%s': expected %s", section, name, value, what)

static int handle_daemon(struct parser *p, const char *section, const char *name, const char *value) {
        struct vgpud_config *c = p->c;
        if (streq(name, "listen"))
                return set_path(p, section, name, &c->socket_path, value);
        if (streq(name, "socket-mode")) {
                char *end;
                unsigned long m = strtoul(value, &end, 8);
                if (end == value || *end || m > 0777)
                        return BAD("an octal mode like 0660");
                c->socket_mode = (mode_t) m;
                return 1;
        }
        if (streq(name, "group")) {
                if (!value[0] || strpbrk(value, " \t:/"))
                        return BAD("a group name");
                return set_string(&c->group, value) < 0 ? fail(p, "out of memory") : 1;
        }
        if (streq(name, "poll-interval")) {
                uint64_t u;
                if (parse_duration(value, &u) < 0 || u < 100000)
                        return BAD("a duration from 100ms to 1h, like 500ms, 10s or 2m");
                c->poll_interval_usec = u;
                return 1;
        }
        if (streq(name, "request-timeout")) {
                uint64_t u;
                if (parse_duration(value, &u) < 0 || u < 1000000 || u > 3600 * 1000000ULL)
                        return BAD("a duration from 1s to 1h, like 10s");
                c->request_timeout_usec = u;
                return 1;
        }
        if (streq(name, "hook")) {
                if (!value[0])
                        return BAD("a command");
                return set_string(&c->hook, value) < 0 ? fail(p, "out of memory") : 1;
        }
        if (streq(name, "restore-on-start") || streq(name, "restore-on-appear")) {
                bool b;
                if (parse_bool(value, &b) < 0)
                        return BAD("yes or no");
                *(streq(name, "restore-on-start") ? &c->restore_on_start : &c->restore_on_appear) = b;
                return 1;
        }
        return fail(p,
                    "[%s] unknown key '%s' (known: listen, socket-mode, group, poll-interval, "
                    "request-timeout, hook, restore-on-start, "
                    "restore-on-appear)",
                    section, name);
}

static int handle_listener(struct parser *p, const char *section, const char *name, const char *value,
                           struct vgpud_addr *a) {
        if (streq(name, "listen")) {
                if (parse_addr(value, a) < 0)
                        return BAD("'off' or a numeric address and port, like 127.0.0.1:9835 or [::1]:9835");
                return 1;
        }
        if (a == &p->c->api && streq(name, "token-file"))
                return set_path(p, section, name, &p->c->api_token_file, value);
        return fail(p, "[%s] unknown key '%s' (known: listen%s)", section, name,
                    a == &p->c->api ? ", token-file" : "");
}

static int handle_collectors(struct parser *p, const char *section, const char *name, const char *value) {
        bool *field = streq(name, "nvml")      ? &p->c->collect_nvml
                      : streq(name, "hwmon")   ? &p->c->collect_hwmon
                      : streq(name, "pcie")    ? &p->c->collect_pcie
                      : streq(name, "sensors") ? &p->c->collect_sensors
                      : streq(name, "ipmi")    ? &p->c->collect_ipmi
                                               : NULL;
        if (!field)
                return fail(p, "[%s] unknown collector '%s' (known: nvml, hwmon, pcie, sensors, ipmi)",
                            section, name);
        if (parse_bool(value, field) < 0)
                return BAD("yes or no");
        return 1;
}

/* [thermal] or [thermal "MATCH"]: index 0 is the defaults, i+1 rule i. */
static int handle_snmp(struct parser *p, const char *section, const char *name, const char *value) {
        if (streq(name, "enable")) {
                if (parse_bool(value, &p->c->snmp_enabled) < 0)
                        return BAD("yes or no");
#if !VGPUD_SNMP
                if (p->c->snmp_enabled)
                        return fail(p, "[%s] %s = %s: this vgpud was built without net-snmp (libsnmp-dev)",
                                    section, name, value);
#endif
                return 1;
        }
        if (streq(name, "agentx-socket")) {
                if (!value[0])
                        return BAD("a path or a net-snmp address");
                return set_string(&p->c->snmp_agentx_socket, value) < 0 ? fail(p, "out of memory") : 1;
        }
        return fail(p, "[%s] unknown key '%s' (known: enable, agentx-socket)", section, name);
}

static int set_fleet_name(struct parser *p, const char *section, const char *name, const char *value,
                          char **field) {
        /* one key component each: no '/', so a prefix range never reaches another's keys */
        size_t n = strlen(value);
        if (n == 0 || n > 128 ||
            strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != n)
                return fail(
                        p,
                        "[%s] %s = '%s': expected a name of letters, digits, '.', '_' and '-' (at most 128)",
                        section, name, value);
        return set_string(field, value) < 0 ? fail(p, "out of memory") : 1;
}

static int set_endpoints(struct parser *p, const char *section, const char *name, const char *value) {
        struct vgpud_fleet_config *f = &p->c->fleet;
        _cleanup_free_ char *copy = strdup(value);
        if (!copy)
                return fail(p, "out of memory");
        size_t n = 0;
        char **v = NULL, *save = NULL;
        for (char *t = strtok_r(copy, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
                if (strncmp(t, "http://", 7) != 0 && strncmp(t, "https://", 8) != 0) {
                        for (size_t i = 0; i < n; i++)
                                free(v[i]);
                        free(v);
                        return fail(p,
                                    "[%s] %s: '%s' is not an etcd URL (expected http://HOST:PORT or "
                                    "https://HOST:PORT)",
                                    section, name, t);
                }
                char **nv = realloc(v, (n + 2) * sizeof(char *));
                if (!nv || !(nv[n] = strdup(t))) {
                        free(nv ? nv : v);
                        return fail(p, "out of memory");
                }
                v = nv;
                v[++n] = NULL;
        }
        if (n == 0)
                return BAD("a comma-separated list of etcd URLs");
        strv_free_null(f->endpoints);
        f->endpoints = v;
        return 1;
}

static int handle_fleet(struct parser *p, const char *section, const char *name, const char *value) {
        struct vgpud_fleet_config *f = &p->c->fleet;
        if (streq(name, "endpoints"))
                return set_endpoints(p, section, name, value);
        if (streq(name, "cluster"))
                return set_fleet_name(p, section, name, value, &f->cluster);
        if (streq(name, "host"))
                return set_fleet_name(p, section, name, value, &f->host);
        if (streq(name, "address")) {
                if (!value[0] || strpbrk(value, " \t/\""))
                        return BAD("HOST:PORT");
                return set_string(&f->address, value) < 0 ? fail(p, "out of memory") : 1;
        }
        if (streq(name, "ca"))
                return set_path(p, section, name, &f->ca, value);
        if (streq(name, "cert"))
                return set_path(p, section, name, &f->cert, value);
        if (streq(name, "key"))
                return set_path(p, section, name, &f->key, value);
        if (streq(name, "user"))
                return value[0] ? (set_string(&f->user, value) < 0 ? fail(p, "out of memory") : 1)
                                : BAD("a user name");
        if (streq(name, "password"))
                return set_string(&f->password, value) < 0 ? fail(p, "out of memory") : 1;
        /* lease_ttl: the spelling of the fleet's contract (FLEET-SPEC.md) */
        if (streq(name, "lease-ttl") || streq(name, "lease_ttl")) {
                if (parse_int(value, 2, 600, &f->lease_ttl_s) < 0)
                        return BAD("seconds from 2 to 600");
                return 1;
        }
        return fail(p,
                    "[%s] unknown key '%s' (known: endpoints, cluster, host, address, ca, cert, key, user, "
                    "password, "
                    "lease-ttl)",
                    section, name);
}

static int thermal_index(struct parser *p, const char *section, size_t *ret) {
        if (streq(section, "thermal")) {
                *ret = 0;
                return 0;
        }
        const char *q = section + strlen("thermal ");
        size_t len = strlen(q);
        if (len < 3 || q[0] != '"' || q[len - 1] != '"')
                return -EINVAL;
        for (size_t i = 0; i < p->c->n_rules; i++)
                if (strlen(p->c->rules[i].match) == len - 2 &&
                    strncmp(p->c->rules[i].match, q + 1, len - 2) == 0)
                        return *ret = i + 1, 0;
        struct vgpud_thermal_rule *rules = realloc(p->c->rules, (p->c->n_rules + 1) * sizeof(*rules));
        void *lines = realloc(p->thermal_lines, (p->c->n_rules + 2) * sizeof(*p->thermal_lines));
        if (rules)
                p->c->rules = rules;
        if (lines)
                p->thermal_lines = lines;
        if (!rules || !lines)
                return -ENOMEM;
        struct vgpud_thermal_rule *r = &rules[p->c->n_rules];
        *r = (struct vgpud_thermal_rule){ .match = strndup(q + 1, len - 2),
                                          .line = p->line,
                                          .limits = { UNSET, UNSET, UNSET } };
        if (!r->match)
                return -ENOMEM;
        p->thermal_lines[++p->c->n_rules].line = p->line;
        *ret = p->c->n_rules;
        return 0;
}

static int handle_thermal(struct parser *p, const char *section, const char *name, const char *value) {
        size_t idx;
        int r = thermal_index(p, section, &idx);
        if (r == -ENOMEM)
                return fail(p, "out of memory");
        if (r < 0)
                return fail(p,
                            "[%s]: expected [thermal] or [thermal \"MATCH\"] (MATCH: a BDF, a model, or "
                            "vendor:device)",
                            section);
        struct vgpu_thermal_limits *l = idx == 0 ? &p->c->thermal : &p->c->rules[idx - 1].limits;
        int *field = streq(name, "warn")         ? &l->warn_c
                     : streq(name, "critical")   ? &l->critical_c
                     : streq(name, "hysteresis") ? &l->hysteresis_c
                                                 : NULL;
        if (!field)
                return fail(p, "[%s] unknown key '%s' (known: warn, critical, hysteresis)", section, name);
        if (parse_int(value, field == &l->hysteresis_c ? 0 : 1, field == &l->hysteresis_c ? 50 : 150, field) <
            0)
                return BAD(field == &l->hysteresis_c ? "degrees C from 0 to 50" : "degrees C from 1 to 150");
        p->thermal_lines[idx].line = p->line;
        return 1;
}

#undef BAD

static int handler(void *user, const char *section, const char *name, const char *value) {
        struct parser *p = user;
        if (p->error_line)
                return 1; /* report the first error only */
        if (streq(section, "daemon"))
                return handle_daemon(p, section, name, value);
        if (streq(section, "metrics"))
                return handle_listener(p, section, name, value, &p->c->metrics);
        if (streq(section, "api"))
                return handle_listener(p, section, name, value, &p->c->api);
        if (streq(section, "collectors"))
                return handle_collectors(p, section, name, value);
        if (streq(section, "thermal") || strncmp(section, "thermal ", 8) == 0)
                return handle_thermal(p, section, name, value);
        if (streq(section, "snmp"))
                return handle_snmp(p, section, name, value);
        if (streq(section, "fleet"))
                return handle_fleet(p, section, name, value);
        if (!section[0])
                return fail(p,
                            "'%s' is outside any section (expected [daemon], [metrics], [api], [collectors], "
                            "[thermal], [snmp] or [fleet])",
                            name);
        return fail(p,
                    "unknown section [%s] (known: daemon, metrics, api, collectors, thermal, thermal "
                    "\"MATCH\", snmp, fleet)",
                    section);
}

int vgpud_config_default(struct vgpud_config **ret) {
        struct vgpud_config *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (struct vgpud_config){
                .socket_mode = 0666,
                .poll_interval_usec = 10 * 1000000ULL,
                .request_timeout_usec = 10 * 1000000ULL,
                .restore_on_start = true,
                .restore_on_appear = true,
                .metrics = { .enabled = true, .host = "127.0.0.1", .port = 9835 },
                .collect_nvml = true,
                .collect_hwmon = true,
                .collect_pcie = true,
                .collect_sensors = true,
                .collect_ipmi = true,
                .thermal = VGPU_THERMAL_LIMITS_DEFAULT,
                .fleet = { .lease_ttl_s = 10 },
        };
        c->socket_path = strdup(VGPU_DAEMON_SOCKET);
        c->group = strdup("vgpu");
        c->source = strdup("(defaults)");
        c->snmp_agentx_socket = strdup("/var/agentx/master"); /* net-snmp's default */
        if (!c->socket_path || !c->group || !c->source || !c->snmp_agentx_socket) {
                vgpud_config_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

void vgpud_config_free(struct vgpud_config *c) {
        if (!c)
                return;
        free(c->source);
        free(c->socket_path);
        free(c->group);
        free(c->hook);
        free(c->api_token_file);
        free(c->snmp_agentx_socket);
        strv_free_null(c->fleet.endpoints);
        free(c->fleet.cluster);
        free(c->fleet.host);
        free(c->fleet.address);
        free(c->fleet.ca);
        free(c->fleet.cert);
        free(c->fleet.key);
        free(c->fleet.user);
        if (c->fleet.password)
                explicit_bzero(c->fleet.password, strlen(c->fleet.password));
        free(c->fleet.password);
        for (size_t i = 0; i < c->n_rules; i++)
                free(c->rules[i].match);
        free(c->rules);
        free(c);
}

/* After the whole file: rules inherit what they leave out, and every set must make sense. */
static int check(struct parser *p, struct vgpu_error *err) {
        struct vgpud_config *c = p->c;
        if (!vgpu_thermal_limits_valid(&c->thermal))
                return vgpu_error_set(err, -EINVAL,
                                      "%s:%d: [thermal] warn %d, critical %d, hysteresis %d: expected warn < "
                                      "critical and hysteresis < warn",
                                      c->source, p->thermal_lines[0].line, c->thermal.warn_c,
                                      c->thermal.critical_c, c->thermal.hysteresis_c);
        for (size_t i = 0; i < c->n_rules; i++) {
                struct vgpu_thermal_limits *l = &c->rules[i].limits;
                if (l->warn_c == UNSET)
                        l->warn_c = c->thermal.warn_c;
                if (l->critical_c == UNSET)
                        l->critical_c = c->thermal.critical_c;
                if (l->hysteresis_c == UNSET)
                        l->hysteresis_c = c->thermal.hysteresis_c;
                if (!vgpu_thermal_limits_valid(l))
                        return vgpu_error_set(err, -EINVAL,
                                              "%s:%d: [thermal \"%s\"] warn %d, critical %d, hysteresis %d: "
                                              "expected warn < critical and hysteresis < warn",
                                              c->source, p->thermal_lines[i + 1].line, c->rules[i].match,
                                              l->warn_c, l->critical_c, l->hysteresis_c);
        }
        if (!!c->fleet.cert != !!c->fleet.key)
                return vgpu_error_set(
                        err, -EINVAL,
                        "%s: [fleet] cert and key go together (a client certificate and its key)", c->source);
        if (c->fleet.password && !c->fleet.user)
                return vgpu_error_set(err, -EINVAL, "%s: [fleet] password is set but user is not", c->source);
        if (c->api.enabled && !c->api_token_file)
                return vgpu_error_set(
                        err, -EINVAL,
                        "%s: [api] listen is on but token-file is not set: the TCP API needs a bearer token",
                        c->source);
        return 0;
}

int vgpud_config_parse(const char *text, const char *source, struct vgpud_config **ret,
                       struct vgpu_error *err) {
        _cleanup_(vgpud_config_freep) struct vgpud_config *c = NULL;
        if (vgpud_config_default(&c) < 0 || set_string(&c->source, source) < 0)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        struct parser p = { .c = c, .text = text };
        if (!(p.thermal_lines = calloc(1, sizeof(*p.thermal_lines))))
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        int line = ini_parse_stream(reader, &p, handler, &p);
        int r = 0;
        if (p.long_line && (!line || p.long_line <= line) && (!p.error_line || p.long_line <= p.error_line))
                r = vgpu_error_set(err, -EINVAL, "%s:%d: line longer than %d characters", source, p.long_line,
                                   INI_MAX_LINE - 1);
        else if (p.error_line && (line <= 0 || p.error_line <= line))
                r = vgpu_error_set(err, -EINVAL, "%s:%d: %s", source, p.error_line, p.error);
        else if (line > 0)
                r = vgpu_error_set(err, -EINVAL,
                                   "%s:%d: syntax error (expected [section], key = value, or a # comment)",
                                   source, line);
        else if (line < 0)
                r = vgpu_error_set(err, -ENOMEM, "%s: out of memory", source);
        else
                r = check(&p, err);
        free(p.thermal_lines);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

int vgpud_config_load(const char *path, bool host_path, struct vgpud_config **ret, struct vgpu_error *err) {
        char full[PATH_MAX];
        if (host_path) {
                if (vgpu_root_path(full, sizeof(full), path) < 0)
                        return vgpu_error_set(err, -ENAMETOOLONG, "%s: path too long", path);
        } else
                snprintf(full, sizeof(full), "%s", path);
        FILE *f = fopen(full, "re");
        if (!f) {
                int r = -errno;
                if (r == -ENOENT && host_path && streq(path, VGPUD_CONFIG_PATH)) {
                        /* no file: the defaults (every key is optional) */
                        if (vgpud_config_default(ret) < 0)
                                return vgpu_error_set(err, -ENOMEM, "out of memory");
                        return 0;
                }
                return vgpu_error_set_errno(err, r, "%s: cannot read the configuration", full);
        }
        char *text = NULL;
        size_t size = 0;
        FILE *m = open_memstream(&text, &size);
        char buf[4096];
        size_t n;
        while (m && (n = fread(buf, 1, sizeof(buf), f)) > 0 && size < (1 << 20))
                fwrite(buf, 1, n, m);
        bool bad = ferror(f) || !m;
        fclose(f);
        if (m)
                fclose(m);
        if (bad) {
                free(text);
                return vgpu_error_set(err, -EIO, "%s: cannot read the configuration", full);
        }
        int r = vgpud_config_parse(text, full, ret, err);
        free(text);
        return r;
}

const struct vgpu_thermal_limits *vgpud_config_limits_for(const struct vgpud_config *c, const char *bdf,
                                                          const char *model, const char *ids) {
        /* BDF first (one card), then its model, then vendor:device */
        for (int pass = 0; pass < 3; pass++) {
                const char *want = pass == 0 ? bdf : pass == 1 ? model : ids;
                for (size_t i = 0; want && i < c->n_rules; i++)
                        if (strcasecmp(c->rules[i].match, want) == 0)
                                return &c->rules[i].limits;
        }
        return &c->thermal;
}

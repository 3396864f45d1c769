/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * main.c — vgpu-broker: places users on the fleet's GPUs (doc/fleet.md). Options, the etcd
 * client pool, the threads (the cache's watch, the janitor, libmicrohttpd's), and the signals.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "broker.h"
#include "vgpu/slice.h"

int broker_log_level = LOG_INFO;

void broker_log(int level, const char *fmt, ...) {
        if (level > broker_log_level)
                return;
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        /* "<N>": the journal's priority when stderr goes there (as sd-daemon(3) says) */
        fprintf(stderr, "<%d>vgpu-broker: %s\n", level, msg);
}

int broker_etcd_take(struct broker *b, struct vgpu_etcd **ret, struct vgpu_error *err) {
        pthread_mutex_lock(&b->pool_lock);
        struct vgpu_etcd *e = b->n_pool > 0 ? b->pool[--b->n_pool] : NULL;
        pthread_mutex_unlock(&b->pool_lock);
        if (!e) {
                int r = vgpu_etcd_new(&b->etcd_cfg, &e, err);
                if (r < 0)
                        return r;
        }
        *ret = e;
        return 0;
}

void broker_etcd_give(struct broker *b, struct vgpu_etcd *e) {
        if (!e)
                return;
        pthread_mutex_lock(&b->pool_lock);
        if (b->n_pool == b->pool_size) {
                size_t n = b->pool_size ? 2 * b->pool_size : 16;
                struct vgpu_etcd **np = n <= 256 ? realloc(b->pool, n * sizeof(*np)) : NULL;
                if (np) {
                        b->pool = np;
                        b->pool_size = n;
                }
        }
        if (b->n_pool < b->pool_size) {
                b->pool[b->n_pool++] = e;
                e = NULL;
        }
        pthread_mutex_unlock(&b->pool_lock);
        vgpu_etcd_free(e); /* more idle clients than the pool keeps */
}

/* In the shape doc/man/gen-man.py reads: the man page vgpu-broker(8) is written from it. */
static void usage(FILE *f) {
        fputs("Usage: vgpu-broker --etcd URLS [OPTIONS]\n"
              "\n"
              "Places users on the fleet's GPUs, keeping all its state in etcd (doc/fleet.md): any number\n"
              "of brokers may run side by side; each claim is one etcd transaction. Serves the fleet's\n"
              "HTTP/JSON API and dashboard.\n"
              "\n"
              "Options:\n"
              "      --etcd URLS                 etcd endpoints, comma-separated\n"
              "      --cluster NAME              the fleet's name in etcd (default \"default\")\n"
              "      --socket PATH               the API's UNIX socket (default /run/vgpu-broker/api.sock)\n"
              "      --listen ADDRESS            the API on TCP too, HOST:PORT (see --tls-cert, "
              "--token-file)\n"
              "      --tls-cert FILE             PEM certificate for --listen\n"
              "      --tls-key FILE              PEM key for --listen\n"
              "      --token-file FILE           a bearer token TCP callers must send\n"
              "      --etcd-ca FILE              CA certificate etcd's is checked against\n"
              "      --etcd-cert FILE            client certificate for etcd\n"
              "      --etcd-key FILE             client key for etcd\n"
              "      --etcd-user NAME            etcd user (with --etcd-password-file)\n"
              "      --etcd-password-file FILE   the etcd user's password\n"
              "      --policy POLICY             spread (default: lowest VRAM utilization first) or binpack\n"
              "      --seed N                    the tie-break's seed (tests replay with it)\n"
              "      --near-equal PERCENT        GPUs within this many points of the lowest utilization\n"
              "                                  are tied, one drawn at random (default 10; 0: exact ties)\n"
              "      --pending-timeout SEC       a claim its host has not realized by then expires (default "
              "120)\n"
              "      --tries N                   claim attempts before 409 (default 8)\n"
              "      --quota-vram SIZE           per-tenant VRAM limit (default none)\n"
              "      --quota-sessions N          per-tenant session limit (default none)\n"
              "      --election-ttl SEC          the janitor's lease (default 5)\n"
              "      --janitor-interval MS       how often the janitor looks (default 1000)\n"
              "      --compact-interval SEC      the janitor compacts etcd's history to what it was this\n"
              "                                  long ago, this often (default 300; 0: never, for an etcd\n"
              "                                  shared with others or run with --auto-compaction-*)\n"
              "      --hold-ttl SEC              how long a refused large request keeps its place and hold\n"
              "                                  after its last retry (default 30; 0: it does not wait)\n"
              "      --dashboard-dir DIR         the web dashboard's files (default " BROKER_DASHBOARD_DIR
              ")\n"
              "  -v, --verbose                   log every request\n"
              "  -h, --help                      show this help\n"
              "\n"
              "Environment: VGPU_BROKER_ETCD gives the endpoints when --etcd is not given.\n"
              "Signals: SIGTERM and SIGINT stop after the requests in flight.\n",
              f);
}

static char **split_endpoints(const char *s) {
        size_t n = 1;
        for (const char *p = s; *p; p++)
                n += *p == ',';
        char **v = calloc(n + 1, sizeof(char *)), *copy = strdup(s), *save = NULL;
        size_t i = 0;
        if (!v || !copy)
                return NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
                v[i++] = strdup(t);
        free(copy);
        return i ? v : (free(v), NULL);
}

static char *read_secret(const char *path) {
        FILE *f = fopen(path, "re");
        char buf[4096];
        if (!f)
                return NULL;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';
        return buf[0] ? strdup(buf) : NULL;
}

static int parse_int(const char *opt, const char *s, int min, int max, int *out) {
        char *end;
        long v = strtol(s, &end, 10);
        if (!*s || *end || v < min || v > max) {
                fprintf(stderr, "vgpu-broker: --%s '%s': expected an integer from %d to %d\n", opt, s, min,
                        max);
                return -EINVAL;
        }
        *out = (int) v;
        return 0;
}

static int parse_args(int argc, char **argv, struct broker *b) {
        enum {
                O_ETCD = 1000,
                O_CLUSTER,
                O_SOCKET,
                O_LISTEN,
                O_TLS_CERT,
                O_TLS_KEY,
                O_TOKEN,
                O_ETCD_CA,
                O_ETCD_CERT,
                O_ETCD_KEY,
                O_ETCD_USER,
                O_ETCD_PASSWORD,
                O_POLICY,
                O_SEED,
                O_NEAR,
                O_PENDING,
                O_TRIES,
                O_QUOTA_VRAM,
                O_QUOTA_SESSIONS,
                O_ELECTION_TTL,
                O_JANITOR,
                O_COMPACT,
                O_HOLD_TTL,
                O_DASHBOARD_DIR
        };
        static const struct option opts[] = {
                { "etcd", required_argument, NULL, O_ETCD },
                { "cluster", required_argument, NULL, O_CLUSTER },
                { "socket", required_argument, NULL, O_SOCKET },
                { "listen", required_argument, NULL, O_LISTEN },
                { "tls-cert", required_argument, NULL, O_TLS_CERT },
                { "tls-key", required_argument, NULL, O_TLS_KEY },
                { "token-file", required_argument, NULL, O_TOKEN },
                { "etcd-ca", required_argument, NULL, O_ETCD_CA },
                { "etcd-cert", required_argument, NULL, O_ETCD_CERT },
                { "etcd-key", required_argument, NULL, O_ETCD_KEY },
                { "etcd-user", required_argument, NULL, O_ETCD_USER },
                { "etcd-password-file", required_argument, NULL, O_ETCD_PASSWORD },
                { "policy", required_argument, NULL, O_POLICY },
                { "seed", required_argument, NULL, O_SEED },
                { "near-equal", required_argument, NULL, O_NEAR },
                { "pending-timeout", required_argument, NULL, O_PENDING },
                { "tries", required_argument, NULL, O_TRIES },
                { "quota-vram", required_argument, NULL, O_QUOTA_VRAM },
                { "quota-sessions", required_argument, NULL, O_QUOTA_SESSIONS },
                { "election-ttl", required_argument, NULL, O_ELECTION_TTL },
                { "janitor-interval", required_argument, NULL, O_JANITOR },
                { "compact-interval", required_argument, NULL, O_COMPACT },
                { "hold-ttl", required_argument, NULL, O_HOLD_TTL },
                { "dashboard-dir", required_argument, NULL, O_DASHBOARD_DIR },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        struct broker_config *c = &b->cfg;
        const char *etcd = getenv("VGPU_BROKER_ETCD"), *password_file = NULL;
        int c_opt, q = 0;
        while ((c_opt = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
                switch (c_opt) {
                case O_ETCD:
                        etcd = optarg;
                        break;
                case O_CLUSTER:
                        c->cluster = optarg;
                        break;
                case O_SOCKET:
                        c->socket_path = optarg[0] ? optarg : NULL;
                        break;
                case O_LISTEN:
                        c->listen = optarg;
                        break;
                case O_TLS_CERT:
                        c->tls_cert = optarg;
                        break;
                case O_TLS_KEY:
                        c->tls_key = optarg;
                        break;
                case O_TOKEN:
                        c->token_file = optarg;
                        break;
                case O_ETCD_CA:
                        c->etcd_ca = optarg;
                        break;
                case O_ETCD_CERT:
                        c->etcd_cert = optarg;
                        break;
                case O_ETCD_KEY:
                        c->etcd_key = optarg;
                        break;
                case O_ETCD_USER:
                        c->etcd_user = optarg;
                        break;
                case O_ETCD_PASSWORD:
                        password_file = optarg;
                        break;
                case O_POLICY:
                        if (strcmp(optarg, "spread") && strcmp(optarg, "binpack")) {
                                fprintf(stderr, "vgpu-broker: --policy '%s': spread or binpack\n", optarg);
                                return -EINVAL;
                        }
                        c->policy = strcmp(optarg, "binpack") == 0 ? VGPU_FLEET_BINPACK : VGPU_FLEET_SPREAD;
                        break;
                case O_SEED:
                        c->seed = strtoull(optarg, NULL, 0);
                        break;
                case O_NEAR:
                        if (parse_int("near-equal", optarg, 0, 100, &q) < 0)
                                return -EINVAL;
                        c->near_percent = (unsigned) q;
                        break;
                case O_PENDING:
                        if (parse_int("pending-timeout", optarg, 1, 86400, &c->pending_timeout_s) < 0)
                                return -EINVAL;
                        break;
                case O_TRIES:
                        if (parse_int("tries", optarg, 1, 100, &c->tries) < 0)
                                return -EINVAL;
                        break;
                case O_QUOTA_VRAM:
                        if (vgpu_slice_parse_memory(optarg, &c->quota_vram_bytes) < 0) {
                                fprintf(stderr, "vgpu-broker: --quota-vram '%s': a size like 64G\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case O_QUOTA_SESSIONS:
                        if (parse_int("quota-sessions", optarg, 1, 1000000, &q) < 0)
                                return -EINVAL;
                        c->quota_sessions = (unsigned) q;
                        break;
                case O_ELECTION_TTL:
                        if (parse_int("election-ttl", optarg, 2, 3600, &c->election_ttl_s) < 0)
                                return -EINVAL;
                        break;
                case O_JANITOR:
                        if (parse_int("janitor-interval", optarg, 50, 600000, &c->janitor_interval_ms) < 0)
                                return -EINVAL;
                        break;
                case O_COMPACT:
                        if (parse_int("compact-interval", optarg, 0, 86400, &c->compact_interval_s) < 0)
                                return -EINVAL;
                        break;
                case O_HOLD_TTL:
                        if (parse_int("hold-ttl", optarg, 0, 3600, &c->hold_ttl_s) < 0)
                                return -EINVAL;
                        break;
                case O_DASHBOARD_DIR:
                        c->dashboard_dir = optarg;
                        break;
                case 'v':
                        broker_log_level = LOG_DEBUG;
                        break;
                case 'h':
                        usage(stdout);
                        exit(EXIT_SUCCESS);
                default:
                        usage(stderr);
                        return -EINVAL;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "vgpu-broker: unexpected argument '%s'\n", argv[optind]);
                return -EINVAL;
        }
        if (!etcd || !(c->endpoints = split_endpoints(etcd))) {
                fprintf(stderr, "vgpu-broker: --etcd URL[,URL...] is needed\n");
                return -EINVAL;
        }
        if (vgpu_fleet_prefix(c->cluster, b->prefix, sizeof(b->prefix)) < 0) {
                fprintf(stderr, "vgpu-broker: --cluster '%s': letters, digits, '.', '_' and '-'\n",
                        c->cluster);
                return -EINVAL;
        }
        if (c->token_file && !(b->token = read_secret(c->token_file))) {
                fprintf(stderr, "vgpu-broker: --token-file %s: cannot read a token from it\n", c->token_file);
                return -EINVAL;
        }
        if (password_file && !(c->etcd_password = read_secret(password_file))) {
                fprintf(stderr, "vgpu-broker: --etcd-password-file %s: cannot read it\n", password_file);
                return -EINVAL;
        }
        b->etcd_cfg = (struct vgpu_etcd_config){ .endpoints = (const char *const *) c->endpoints,
                                                 .ca_file = c->etcd_ca,
                                                 .cert_file = c->etcd_cert,
                                                 .key_file = c->etcd_key,
                                                 .user = c->etcd_user,
                                                 .password = c->etcd_password };
        return 0;
}

int main(int argc, char **argv) {
        static struct broker b = {
                .cfg = { .cluster = "default",
                         .socket_path = "/run/vgpu-broker/api.sock",
                         .pending_timeout_s = 120,
                         .election_ttl_s = 5,
                         .janitor_interval_ms = 1000,
                         .compact_interval_s = 300,
                         .tries = 8,
                         .near_percent = 10,
                         .hold_ttl_s = 30,
                         .dashboard_dir = BROKER_DASHBOARD_DIR },
        };
        if (parse_args(argc, argv, &b) < 0)
                return 2;
        /* tests: every placement the index decides is checked against the full scan */
        const char *ci = getenv("VGPU_BROKER_CHECK_INDEX");
        b.cfg.check_index = ci && strcmp(ci, "1") == 0;
        if (cache_init(&b.cache) < 0)
                return 1;
        pthread_mutex_init(&b.pool_lock, NULL);
        pthread_mutex_init(&b.hist_lock, NULL);
        pthread_mutex_init(&b.inflight_lock, NULL);
        uint8_t rnd[8];
        if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
                memset(rnd, 0, sizeof(rnd));
        char host[64] = "?";
        gethostname(host, sizeof(host) - 1);
        snprintf(b.id, sizeof(b.id), "%.16s-%d-%02x%02x%02x%02x", host, (int) getpid(), rnd[0], rnd[1],
                 rnd[2], rnd[3]);

        /* the threads must not take the signals: the main thread waits for them */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        signal(SIGPIPE, SIG_IGN);

        struct http *h = NULL;
        if (http_start(&b, &h) < 0)
                return 1;
        pthread_t cache_tid, janitor_tid;
        pthread_create(&cache_tid, NULL, cache_thread, &b);
        pthread_create(&janitor_tid, NULL, janitor_thread, &b);
        broker_log(LOG_INFO, "broker %s on %s (%s), etcd %s", b.id, b.prefix,
                   b.cfg.policy == VGPU_FLEET_BINPACK ? "binpack" : "spread", b.cfg.endpoints[0]);

        /* READY=1 once the cache is synced: systemd's ordering then means "can place" */
        bool notified = false;
        for (;;) {
                struct timespec ts = { 0, 50 * 1000 * 1000 };
                int sig = sigtimedwait(&set, NULL, &ts);
                if (sig > 0 && sig != SIGHUP)
                        break;
                if (!notified && atomic_load(&b.cache.ready)) {
                        (void) sd_notify(0, "READY=1\nSTATUS=placing");
                        broker_log(LOG_INFO, "ready");
                        notified = true;
                }
        }
        (void) sd_notify(0, "STOPPING=1");
        b.stop = 1;
        http_stop(h);
        pthread_join(cache_tid, NULL);
        pthread_join(janitor_tid, NULL);
        for (size_t i = 0; i < b.n_pool; i++)
                vgpu_etcd_free(b.pool[i]);
        free(b.pool);
        free(b.inflight);
        cache_done(&b.cache);
        free(b.token);
        for (char **p = b.cfg.endpoints; p && *p; p++)
                free(*p);
        free(b.cfg.endpoints);
        return 0;
}

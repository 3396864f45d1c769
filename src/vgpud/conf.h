/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * conf.h — vgpud's configuration, /etc/vgpuctl/vgpud.conf (INI, read with inih):
 *
 *     [daemon]
 *     listen = /run/vgpud/vgpud.sock   # the local API socket (a host path, under VGPU_ROOT)
 *     socket-mode = 0666               # who may connect; authorization is per caller anyway
 *     group = vgpu                     # members (and root) may change things; others only read
 *     poll-interval = 10s              # 500ms, 10s, 2m
 *     hook = /usr/local/sbin/on-gpu-event   # run through /bin/sh on thermal/link events
 *     restore-on-start = yes           # apply /var/lib/vgpuctl/host.yaml at start ...
 *     restore-on-appear = yes          # ... and when a vGPU parent appears
 *     [metrics]
 *     listen = 127.0.0.1:9835          # Prometheus /metrics; "off" disables
 *     [api]
 *     listen = off                     # TCP API for the fleet broker, e.g. 10.0.0.5:9836
 *     token-file = /etc/vgpuctl/vgpud.token
 *     [collectors]
 *     nvml = yes
 *     hwmon = yes
 *     pcie = yes
 *     sensors = yes                    # hwmon chips through libsensors (live /sys only)
 *     ipmi = yes                       # BMC sensors and SEL through /dev/ipmi0, when there is one
 *     [thermal]                        # defaults; [thermal "MATCH"] overrides per GPU BDF,
 *     warn = 75                        # model (NVML name, "Tesla T4") or "vendor:device"
 *     critical = 85
 *     hysteresis = 5
 *     [snmp]                           # an AgentX subagent of snmpd (VGPU-MIB); needs libsnmp
 *     enable = no
 *     agentx-socket = /var/agentx/master   # a host path, or a net-snmp address (tcp:127.0.0.1:705)
 *     [fleet]                          # join a fleet in etcd (doc/fleet.md); off without endpoints
 *     endpoints = http://10.0.0.1:2379,http://10.0.0.2:2379
 *     cluster = default
 *     host = gpu-07                    # this host's name in the fleet; default: the hostname
 *     address = 10.0.0.7:9836          # where a broker reaches this host's TCP API
 *     ca = /etc/vgpuctl/etcd-ca.pem    # TLS: trust; cert + key: client certificate
 *     user = vgpud                     # etcd auth, with password
 *     lease-ttl = 10                   # seconds (2..600); keys vanish that long after death
 *
 * A missing file is the defaults. Anything wrong names FILE:LINE and the key; the daemon then
 * refuses to start (or, on reload, keeps its running configuration).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "basic/macro.h"
#include "vgpu/error.h"
#include "vgpu/host.h"
#include "vgpu/telemetry.h"

#define VGPUD_CONFIG_PATH "/etc/vgpuctl/vgpud.conf"

struct vgpud_addr {
        bool enabled;
        char host[64]; /* numeric IPv4 or IPv6 address */
        uint16_t port;
};

struct vgpud_thermal_rule {
        char *match; /* BDF, model or "vendor:device" */
        struct vgpu_thermal_limits limits;
        int line;
};

/* [fleet]: off while endpoints is NULL */
struct vgpud_fleet_config {
        char **endpoints; /* NULL-terminated */
        char *cluster, *host, *address;
        char *ca, *cert, *key; /* host paths (under VGPU_ROOT) */
        char *user, *password;
        int lease_ttl_s;
};

struct vgpud_config {
        char *source;      /* the file read, for messages */
        char *socket_path; /* host path */
        mode_t socket_mode;
        char *group;
        uint64_t poll_interval_usec;
        uint64_t request_timeout_usec; /* to send a request's headers; its body gets 6 times that */
        char *hook;                    /* NULL: none */
        bool restore_on_start, restore_on_appear;

        struct vgpud_addr metrics;
        struct vgpud_addr api;
        char *api_token_file; /* host path; required when the TCP API is on */

        bool collect_nvml, collect_hwmon, collect_pcie;
        bool collect_sensors, collect_ipmi;

        bool snmp_enabled;
        char *snmp_agentx_socket;

        struct vgpud_fleet_config fleet;

        struct vgpu_thermal_limits thermal; /* defaults */
        struct vgpud_thermal_rule *rules;
        size_t n_rules;
};

/* The defaults, as if from an empty file. */
int vgpud_config_default(struct vgpud_config **ret);
/* Parse text (source names it in messages). */
int vgpud_config_parse(const char *text, const char *source, struct vgpud_config **ret,
                       struct vgpu_error *err);
/* Read path (a host path under VGPU_ROOT when host_path); a missing default file is the defaults. */
int vgpud_config_load(const char *path, bool host_path, struct vgpud_config **ret, struct vgpu_error *err);
void vgpud_config_free(struct vgpud_config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct vgpud_config *, vgpud_config_free);

/* The limits for a GPU: the first rule naming its BDF, else its model, else the defaults. */
const struct vgpu_thermal_limits *vgpud_config_limits_for(const struct vgpud_config *c, const char *bdf,
                                                          const char *model, const char *ids);

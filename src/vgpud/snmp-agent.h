/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * snmp-agent.h — vgpud as an AgentX subagent of the host's snmpd (net-snmp's agent library):
 * it serves VGPU-MIB (data/VGPU-MIB.txt: the GPU, vGPU instance and slice tables of the last
 * poll) and sends its notifications through the master, which forwards them to its trap sinks.
 *
 * Off unless vgpud.conf's [snmp] enable = yes. Built only where net-snmp's agent library is
 * (libsnmp-dev); elsewhere these are no-ops and [snmp] enable = yes is refused by conf.c.
 */
#pragma once

#include <stdint.h>

struct vgpud;

enum snmp_notification {
        SNMP_NOTIFY_THERMAL_WARNING = 1, /* the numbers are the MIB's, under vgpuNotifications */
        SNMP_NOTIFY_THERMAL_CRITICAL = 2,
        SNMP_NOTIFY_XID_CRITICAL = 3,
        SNMP_NOTIFY_BMC_OVER_TEMPERATURE = 4,
        SNMP_NOTIFY_BMC_UNDER_VOLTAGE = 5,
};

#if VGPUD_SNMP
/* Connect to the master named by [snmp] agentx-socket (it may come later: retried every few
 * seconds) and serve the MIB from the loop. 0 when off. */
int snmp_agent_start(struct vgpud *d);
void snmp_agent_stop(struct vgpud *d);
/* Send a notification; bdf may be NULL, temperature_c VGPU_TEMP_UNKNOWN, xid 0 where they do
 * not apply. Lost while no master is connected (SNMP notifications are not queued). */
void snmp_agent_notify(struct vgpud *d, enum snmp_notification n, const char *bdf, int temperature_c,
                       uint64_t xid, const char *message);
#else
static inline int snmp_agent_start(struct vgpud *d) {
        (void) d;
        return 0;
}
static inline void snmp_agent_stop(struct vgpud *d) {
        (void) d;
}
static inline void snmp_agent_notify(struct vgpud *d, enum snmp_notification n, const char *bdf,
                                     int temperature_c, uint64_t xid, const char *message) {
        (void) d, (void) n, (void) bdf, (void) temperature_c, (void) xid, (void) message;
}
#endif

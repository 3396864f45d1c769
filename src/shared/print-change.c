/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * print-change.c — the outcome of a change as `vgpuctl create/remove/apply` print it: one
 * instance's outcome, or an apply plan. The daemon answers its mutating calls with the same.
 */
#include <stdio.h>

#include "print.h"

void print_outcome(struct out *o, const char *verb_done, const char *verb_noop, int r, const char *uuid,
                   const char *parent, const char *type) {
        out_open_object(o, NULL);
        out_string(o, OUT_JSON, "uuid", NULL, uuid && uuid[0] ? uuid : NULL);
        out_string(o, OUT_JSON, "parent", NULL, parent);
        out_string(o, OUT_JSON, "type", NULL, type);
        out_bool(o, OUT_JSON, "changed", NULL, r > 0);
        out_close_object(o);
        if (!out_is_json(o)) {
                const char *what = uuid && uuid[0] ? uuid : parent;
                if (type)
                        out_text(o, "%s %s (%s on %s)%s\n", r > 0 ? verb_done : what,
                                 r > 0 ? what : verb_noop, type, parent, r > 0 ? "" : ": nothing to do");
                else
                        out_text(o, "%s %s\n", r > 0 ? verb_done : what, r > 0 ? what : verb_noop);
        }
}

void describe_action(char *buf, size_t size, const struct vgpu_action *a) {
        switch (a->kind) {
        case VGPU_ACTION_SET_VFS:
                snprintf(buf, size, "%s: %u -> %u VFs", a->spec.parent, a->old_vfs, a->vfs);
                break;
        case VGPU_ACTION_SET_POLICY:
                snprintf(buf, size, "%s", a->spec.parent);
                break;
        case VGPU_ACTION_WRITE_ATTR:
                snprintf(buf, size, "%s = %s", a->spec.parent, strempty(a->detail));
                break;
        case VGPU_ACTION_ENABLE_SERVICE:
                snprintf(buf, size, "%s", a->spec.parent);
                break;
        case VGPU_ACTION_SET_PERSISTENCE: /* what differs is the point: "0000:5e:00.0 on (now off)" */
                snprintf(buf, size, "%s %s", a->spec.parent, strempty(a->detail));
                break;
        case VGPU_ACTION_SLICE_CREATE:
        case VGPU_ACTION_SLICE_REMOVE: {
                char mem[16] = "unlimited", share[16] = "";
                if (a->slice.memory)
                        format_bytes(mem, sizeof(mem), (int64_t) a->slice.memory);
                if (a->slice.share)
                        snprintf(share, sizeof(share), " %u%%", a->slice.share);
                snprintf(buf, size, "slice %s (%s on %s, %s%s, scrub %s)", a->slice.name, mem, a->slice.gpu,
                         strempty(vgpu_slice_policy_to_string(a->slice.policy)), share,
                         strempty(vgpu_slice_scrub_to_string(a->slice.scrub)));
                break;
        }
        default:
                snprintf(buf, size, "%s (%s on %s)", a->spec.uuid[0] ? a->spec.uuid : "vendor-VFIO vGPU",
                         a->spec.type, a->spec.parent);
        }
}

/* An action as done, for the list after "done:": "create" and "not defined yet" are what a plan
 * says; once done, "created" (and no reason that reads like a failure: "define X: not defined
 * yet" said the opposite of what had just happened). */
static const char *done_verb(enum vgpu_action_kind kind) {
        switch (kind) {
        case VGPU_ACTION_REMOVE:
        case VGPU_ACTION_SLICE_REMOVE:
                return "removed";
        case VGPU_ACTION_UNDEFINE:
                return "undefined";
        case VGPU_ACTION_SET_VFS:
                return "set";
        case VGPU_ACTION_CREATE:
        case VGPU_ACTION_SLICE_CREATE:
                return "created";
        case VGPU_ACTION_DEFINE:
                return "defined";
        case VGPU_ACTION_SET_POLICY:
        case VGPU_ACTION_WRITE_ATTR:
                return "wrote";
        case VGPU_ACTION_ENABLE_SERVICE:
                return "enabled";
        case VGPU_ACTION_SET_PERSISTENCE:
                return "set";
        case VGPU_ACTION_FRAME_RATE_PENDING:
                return "pending";
        case VGPU_ACTION_RESTART:
                return "restarted";
        }
        return "did";
}

/* Why a removal was done still explains it ("not in the file"); why a creation was planned
 * ("not created yet") no longer holds once it is done. */
static bool reason_after_done(enum vgpu_action_kind kind) {
        /* a pending frame-rate limit: the reason is when it will take effect */
        return kind == VGPU_ACTION_REMOVE || kind == VGPU_ACTION_UNDEFINE ||
               kind == VGPU_ACTION_SLICE_REMOVE || kind == VGPU_ACTION_FRAME_RATE_PENDING;
}

static void print_actions(struct out *o, const struct vgpu_plan *plan, bool diff, const char *heading,
                          bool done) {
        out_open_object(o, NULL);
        out_u64(o, OUT_JSON, "changes", NULL, plan->n_actions);
        out_open_array(o, "actions");
        if (plan->n_actions && heading)
                out_text(o, "%s\n", heading);
        for (size_t i = 0; i < plan->n_actions; i++) {
                const struct vgpu_action *a = &plan->actions[i];
                char what[256];
                describe_action(what, sizeof(what), a);
                out_open_object(o, NULL);
                out_string(o, OUT_JSON, "action", NULL, vgpu_action_kind_to_string(a->kind));
                out_string(o, OUT_JSON, "uuid", NULL, a->spec.uuid[0] ? a->spec.uuid : NULL);
                out_string(o, OUT_JSON, "parent", NULL, a->spec.parent);
                out_string(o, OUT_JSON, "type", NULL, a->spec.type);
                bool slice = a->kind == VGPU_ACTION_SLICE_CREATE || a->kind == VGPU_ACTION_SLICE_REMOVE;
                out_string(o, OUT_JSON, "slice", NULL, slice ? a->slice.name : NULL);
                out_string(o, OUT_JSON, "detail", NULL, a->kind == VGPU_ACTION_SET_POLICY ? NULL : a->detail);
                bool has_why = a->kind != VGPU_ACTION_SET_POLICY && a->kind != VGPU_ACTION_WRITE_ATTR &&
                               a->kind != VGPU_ACTION_SET_PERSISTENCE && a->detail;
                if (diff)
                        out_text(o, "%c %-10s %s\n",
                                 a->kind == VGPU_ACTION_REMOVE || a->kind == VGPU_ACTION_UNDEFINE ||
                                                 a->kind == VGPU_ACTION_SLICE_REMOVE
                                         ? '-'
                                         : '+',
                                 vgpu_action_kind_to_string(a->kind), what);
                else {
                        if (done)
                                has_why &= reason_after_done(a->kind);
                        out_text(o, "  %-10s %s%s%s\n",
                                 done ? done_verb(a->kind) : vgpu_action_kind_to_string(a->kind), what,
                                 has_why ? ": " : "", has_why ? a->detail : "");
                }
                out_close_object(o);
        }
        out_close_array(o);
        out_string(o, OUT_JSON, "note", NULL, plan->notes);
        if (plan->notes)
                out_text(o, "note: %s\n", plan->notes);
        out_close_object(o);
}

void print_plan(struct out *o, const struct vgpu_plan *plan, bool diff, const char *heading) {
        print_actions(o, plan, diff, heading, false);
}

void print_apply(struct out *o, const struct vgpu_plan *plan, bool diff, bool dry_run, const char *source) {
        if (plan->n_actions == 0 && !out_is_json(o))
                out_text(o, "nothing to do: the host matches %s\n", source);
        else
                print_actions(o, plan, diff, dry_run ? "would do (dry run):" : "done:", !dry_run);
}

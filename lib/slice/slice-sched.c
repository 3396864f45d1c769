/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * slice-sched.c — the time-slice scheduler of one GPU, shared by all its slices: who holds the
 * GPU (a turn), who gets it next, and what each turn cost.
 *
 * A turn belongs to one slice; every process of that slice may launch during it. A turn ends at
 * its deadline: the participants wait for their queued GPU work (the shim measures it with
 * events), report when it completed, and the last one out closes the turn, charges the slice the
 * GPU time measured from the turn's first launch to its last completion, and grants the next.
 * Charges, not deadlines, decide the shares, so a kernel that overruns its turn is paid for
 * later (deficit round robin): long kernels cannot skew the shares.
 *   fixed-share  token bucket refilled at weight % of wall time; no turn while it is empty, even
 *                on an idle GPU (a hard cap); served before equal-share slices (a guarantee).
 *   equal-share  deficit round robin among the slices that want the GPU; a turn is extended
 *                without any synchronization while no other slice waits (idle time goes to the
 *                active ones, and a lone tenant pays nothing).
 * A slice wants the GPU while a process of it waits for a turn (however late a loaded host lets
 * it look again), leaves one to launch on, or asked within the last few quanta; every slice
 * that wants it is credited each DRR round, the one whose turn that round closes included.
 *   best-effort  not scheduled at all.
 * The functions here work on a copy of the state that the caller holds exclusively (the file's
 * lock: sched-file.c); a process dying with the lock loses it, and every turn ends by its
 * deadline, so a dead holder delays the others by at most one grace period. The state comes
 * from a file every tenant can write: slice_sched_repair() brings whatever it holds back into
 * the ranges this code relies on.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "basic/error-util.h"
#include "slice.h"

/* A slice wants the GPU if one of its processes asked within this many quanta (waiters ask
 * again at least once a quantum). */
#define WANT_QUANTA     3
/* ...or waits for a turn: its want holds this long ahead, as a process starved of the CPU may
 * look again much later than it meant to (5 to 10 ms for a 0.5 ms wait, measured on a loaded
 * host), and must not lose its place meanwhile. A grant nobody came for ends that early. */
#define WAITING_NS      UINT64_C(1000000000)
/* A turn held past its deadline by participants not waiting for the GPU (busy on the CPU, or
 * dead) is closed by the others after this many quanta. */
#define GRACE_QUANTA    2
/* ...and even one whose participants say they wait for the GPU, after this long. */
#define HARD_OVERRUN_NS UINT64_C(1000000000)

int slice_sched_init(struct slice_shm *shm, const struct slice_gpu_params *gpu) {
        uint64_t quantum = gpu && gpu->quantum_ns ? gpu->quantum_ns : SLICE_QUANTUM_DEFAULT_NS;
        if (quantum < SLICE_QUANTUM_MIN_NS || quantum > SLICE_QUANTUM_MAX_NS)
                return -EINVAL;
        memset(shm, 0, sizeof(*shm));
        shm->magic = SLICE_SHM_MAGIC;
        shm->version = SLICE_SHM_VERSION;
        shm->size = (uint32_t) sizeof(*shm);
        snprintf(shm->gpu_bdf, sizeof(shm->gpu_bdf), "%s", gpu && gpu->bdf ? gpu->bdf : "");
        shm->sched.quantum_ns = quantum;
        return 0;
}

const char *slice_sched_problem(const struct slice_shm *shm) {
        if (atomic_load(&shm->magic) != SLICE_SHM_MAGIC || shm->version != SLICE_SHM_VERSION ||
            shm->size != sizeof(*shm))
                return "not a slice scheduler of this version";
        /* the scheduler divides by the quantum */
        if (shm->sched.quantum_ns < SLICE_QUANTUM_MIN_NS || shm->sched.quantum_ns > SLICE_QUANTUM_MAX_NS)
                return "corrupt slice scheduler (its time slice)";
        return NULL;
}

void slice_sched_repair(struct slice_shm *shm) {
        struct slice_sched *sch = &shm->sched;
        int64_t q = (int64_t) sch->quantum_ns;
        if (atomic_load(&sch->owner) > SLICE_MAX)
                atomic_store(&sch->owner, 0);
        if (sch->last_owner > SLICE_MAX)
                sch->last_owner = 0;
        if (sch->participants < 0 || sch->participants > (int32_t) (SLICE_MAX * SLICE_PROCS_MAX))
                sch->participants = 0;
        if (sch->blocked < 0 || sch->blocked > sch->participants)
                sch->blocked = sch->participants;
        for (unsigned i = 0; i < SLICE_MAX; i++) {
                struct slice_sched_slot *s = &shm->slices[i];
                if (s->policy > SLICE_POLICY_FIXED_SHARE || s->weight < 1 || s->weight > 100) {
                        s->policy = SLICE_POLICY_BEST_EFFORT; /* not scheduled: harms no one */
                        s->weight = 100;
                }
                /* credit within what the algorithm itself produces: a deficit far below zero
                 * would starve the slice, one above a quantum would starve the others */
                if (s->deficit_ns > q || s->deficit_ns < -64 * q)
                        s->deficit_ns = 0;
                if (s->budget_ns > 2 * q || s->budget_ns < -64 * q)
                        s->budget_ns = 0;
        }
}

static bool slice_gated(const struct slice_sched_slot *s) {
        return atomic_load_explicit(&s->state, memory_order_acquire) == SLICE_STATE_ACTIVE &&
               s->policy != SLICE_POLICY_BEST_EFFORT;
}

static bool slice_wants(const struct slice_sched_slot *s, uint64_t now, uint64_t quantum) {
        uint64_t w = atomic_load_explicit(&s->want_ns, memory_order_relaxed);
        return w != 0 && (w > now || now - w <= WANT_QUANTA * quantum);
}

bool slice_sched_contended(const struct slice_shm *shm, unsigned index, uint64_t now) {
        for (unsigned i = 0; i < SLICE_MAX; i++)
                if (i != index && slice_gated(&shm->slices[i]) &&
                    slice_wants(&shm->slices[i], now, shm->sched.quantum_ns))
                        return true;
        return false;
}

/* Fixed share: add weight % of the time since the last refill, up to a burst of two quanta.
 * The stamp advances only by the time converted, so no fraction of a nanosecond is lost. */
static void refill(struct slice_sched_slot *s, uint64_t now, uint64_t quantum) {
        if (now < s->budget_stamp_ns)
                s->budget_stamp_ns = now; /* a clock behind the stamp: start from here */
        uint64_t add = (now - s->budget_stamp_ns) * s->weight / 100;
        int64_t cap = (int64_t) (2 * quantum);
        if (s->budget_ns + (int64_t) add >= cap) {
                s->budget_ns = cap;
                s->budget_stamp_ns = now;
        } else {
                s->budget_ns += (int64_t) add;
                s->budget_stamp_ns += add * 100 / s->weight;
        }
}

/* When a fixed-share slice's budget will be positive again. */
static uint64_t refill_time(const struct slice_sched_slot *s) {
        uint64_t need = (uint64_t) (1 - s->budget_ns);
        return s->budget_stamp_ns + (need * 100 + s->weight - 1) / s->weight;
}

static void charge_slice(struct slice_sched_slot *s, uint64_t ns, uint64_t now, uint64_t quantum) {
        atomic_fetch_add(&s->gpu_ns, ns);
        if (s->policy == SLICE_POLICY_FIXED_SHARE) {
                refill(s, now, quantum);
                s->budget_ns -= (int64_t) ns;
        } else
                s->deficit_ns -= (int64_t) ns;
}

/*
 * The slice to serve next, in rotation after the last owner: fixed-share slices with budget
 * first, then equal-share by deficit round robin. -1 when none may run now; *until is then
 * lowered to when a fixed-share budget refills. Slice `skip` (-1: none) is not picked, but is
 * credited its rounds like every slice that waits.
 */
static int pick_next(struct slice_shm *shm, uint64_t now, uint64_t *until, int skip) {
        struct slice_sched *sch = &shm->sched;
        uint64_t q = sch->quantum_ns;
        unsigned start = sch->last_owner; /* index + 1 of the last owner = the next index */

        for (unsigned k = 0; k < SLICE_MAX; k++) {
                unsigned i = (start + k) % SLICE_MAX;
                struct slice_sched_slot *s = &shm->slices[i];
                if ((int) i == skip || !slice_gated(s) || s->policy != SLICE_POLICY_FIXED_SHARE ||
                    !slice_wants(s, now, q))
                        continue;
                refill(s, now, q);
                if (s->budget_ns > 0)
                        return (int) i;
                uint64_t refill_at = refill_time(s);
                if (refill_at < *until)
                        *until = refill_at;
        }

        int64_t best = INT64_MIN;
        for (unsigned k = 0; k < SLICE_MAX; k++) {
                unsigned i = (start + k) % SLICE_MAX;
                struct slice_sched_slot *s = &shm->slices[i];
                if ((int) i == skip || !slice_gated(s) || s->policy != SLICE_POLICY_EQUAL_SHARE ||
                    !slice_wants(s, now, q))
                        continue;
                if (s->deficit_ns > 0)
                        return (int) i;
                if (s->deficit_ns > best)
                        best = s->deficit_ns;
        }
        if (best == INT64_MIN)
                return -1;

        /* Nobody has credit left: as many DRR rounds as the best-placed slice needs, at once.
         * Credit is capped at one quantum so that idle slices do not bank time. */
        int64_t rounds = (1 - best) / (int64_t) q + 1;
        int pick = -1;
        for (unsigned k = 0; k < SLICE_MAX; k++) {
                unsigned i = (start + k) % SLICE_MAX;
                struct slice_sched_slot *s = &shm->slices[i];
                if (!slice_gated(s) || s->policy != SLICE_POLICY_EQUAL_SHARE || !slice_wants(s, now, q))
                        continue;
                s->deficit_ns += rounds * (int64_t) q;
                if (s->deficit_ns > (int64_t) q)
                        s->deficit_ns = (int64_t) q;
                if (pick < 0 && s->deficit_ns > 0 && (int) i != skip)
                        pick = (int) i;
        }
        return pick;
}

/* slice_sched_file_end() wakes the waiters when this word moved. */
static void bump_wake(struct slice_sched *sch) {
        atomic_fetch_add(&sch->wake, 1);
}

static void grant(struct slice_shm *shm, unsigned index, uint64_t now) {
        struct slice_sched *sch = &shm->sched;
        uint32_t turn = atomic_load(&sch->turn) + 1;
        if (turn == 0)
                turn = 1; /* 0 means "in no turn" to the shim */
        sch->grant_ns = now;
        sch->first_ns = 0;
        sch->last_ns = 0;
        sch->participants = 0;
        sch->blocked = 0;
        memset(sch->parts, 0, sizeof(sch->parts));
        atomic_store(&sch->deadline_ns, now + sch->quantum_ns);
        atomic_store(&sch->turn, turn);
        atomic_store(&sch->owner, index + 1);
        atomic_fetch_add(&shm->slices[index].turns, 1);
        bump_wake(sch);
}

/* End the current turn, charge it, and hand the GPU to the next slice (not `skip`) if one may run. */
static void close_turn(struct slice_shm *shm, uint64_t now, bool forced, int skip) {
        struct slice_sched *sch = &shm->sched;
        unsigned owner = atomic_load(&sch->owner);
        if (owner == 0)
                return;
        struct slice_sched_slot *s = &shm->slices[owner - 1];
        uint64_t charge = 0;
        if (forced) {
                /* Participants still out there will add what ran past now (see leave). */
                charge = sch->first_ns && now > sch->first_ns ? now - sch->first_ns : 0;
                s->forced_turn = atomic_load(&sch->turn);
                s->forced_end_ns = now;
        } else if (sch->first_ns && sch->last_ns > sch->first_ns)
                charge = sch->last_ns - sch->first_ns;
        charge_slice(s, charge, now, sch->quantum_ns);
        sch->last_owner = owner;
        atomic_store(&sch->owner, 0);

        uint64_t until = UINT64_MAX;
        int next = pick_next(shm, now, &until, skip);
        if (next >= 0)
                grant(shm, (unsigned) next, now);
        else
                bump_wake(sch);
}

static bool parts_all_dead(const struct slice_sched *sch) {
        uint64_t myns = proc_pidns();
        int seen = 0;
        for (unsigned i = 0; i < SLICE_PARTS_MAX; i++) {
                const struct slice_part *p = &sch->parts[i];
                if (p->pid == 0)
                        continue;
                if ((p->pidns && myns && p->pidns != myns) || proc_alive(p->pid, 0))
                        return false;
                seen++;
        }
        /* Participants we could not register are presumed alive. */
        return seen >= sch->participants;
}

/* May the turn, past its deadline (or never joined), be closed by someone else now? */
static bool closeable(const struct slice_sched *sch, uint64_t now) {
        uint64_t deadline = atomic_load(&sch->deadline_ns), q = sch->quantum_ns;
        if (sch->participants <= 0)
                /* Granted but nobody came: a live grantee joins within microseconds. */
                return now >= deadline || (sch->first_ns == 0 && now >= sch->grant_ns + q / 2);
        if (now < deadline)
                return false;
        if (now >= deadline + HARD_OVERRUN_NS)
                return true;
        if (sch->blocked == 0 && now >= deadline + GRACE_QUANTA * q)
                return true;
        return parts_all_dead(sch);
}

static void join(struct slice_shm *shm, uint64_t now, struct slice_sched_ticket *ret) {
        struct slice_sched *sch = &shm->sched;
        sch->participants++;
        for (unsigned i = 0; i < SLICE_PARTS_MAX; i++)
                if (sch->parts[i].pid == 0) {
                        sch->parts[i] = (struct slice_part){ .pid = getpid(), .pidns = proc_pidns() };
                        break;
                }
        if (sch->first_ns == 0 || now < sch->first_ns)
                sch->first_ns = now;
        ret->turn = atomic_load(&sch->turn);
        ret->deadline_ns = atomic_load(&sch->deadline_ns);
}

int slice_sched_enter(struct slice_shm *shm, unsigned index, uint64_t now, struct slice_sched_ticket *ret,
                      uint32_t *ret_wake, uint64_t *ret_until) {
        struct slice_sched *sch = &shm->sched;
        uint64_t q = sch->quantum_ns;
        if (index >= SLICE_MAX)
                return -EINVAL;
        atomic_store_explicit(&shm->slices[index].want_ns, now, memory_order_relaxed);

        uint64_t until = now + q;
        unsigned owner = atomic_load(&sch->owner);
        uint64_t deadline = atomic_load(&sch->deadline_ns);
        if (owner == index + 1 && now < deadline) {
                join(shm, now, ret);
                return 0;
        }
        if (owner != 0) {
                if (!closeable(sch, now)) {
                        /* Look again at the deadline, then every quarter quantum for the grace. */
                        until = now < deadline ? deadline : now + q / 4;
                        goto wait;
                }
                int skip = -1;
                if (sch->participants <= 0 && sch->first_ns == 0 && owner != index + 1) {
                        /* Granted, and nobody came: its waiter cannot run (starved of the CPU
                         * on a loaded host, or dead). The GPU goes to another slice, but the
                         * absent one keeps its place and its credit, and its want decays from
                         * now unless it asks again: a dead waiter costs a grant or two more, each
                         * half a quantum, within WANT_QUANTA. Only ever lowered: moved up to now on
                         * every such grant, a dead waiter's want never decayed, and it took every
                         * other turn forever. */
                        skip = (int) owner - 1;
                        uint64_t want =
                                atomic_load_explicit(&shm->slices[skip].want_ns, memory_order_relaxed);
                        if (want > now)
                                atomic_store_explicit(&shm->slices[skip].want_ns, now, memory_order_relaxed);
                }
                close_turn(shm, now, sch->participants > 0, skip);
                owner = atomic_load(&sch->owner);
        } else {
                int next = pick_next(shm, now, &until, -1);
                if (next >= 0) {
                        grant(shm, (unsigned) next, now);
                        owner = (unsigned) next + 1;
                }
        }
        if (owner == index + 1) {
                join(shm, now, ret);
                return 0;
        }
        if (owner != 0)
                until = atomic_load(&sch->deadline_ns);
wait:
        atomic_store_explicit(&shm->slices[index].want_ns, now + WAITING_NS, memory_order_relaxed);
        *ret_wake = atomic_load(&sch->wake);
        *ret_until = until < now + q ? until : now + q;
        return -EAGAIN;
}

int slice_sched_extend(struct slice_shm *shm, unsigned index, struct slice_sched_ticket *t, uint64_t now) {
        struct slice_sched *sch = &shm->sched;
        struct slice_sched_slot *s = &shm->slices[index];
        if (s->policy != SLICE_POLICY_EQUAL_SHARE)
                return 0;
        int r = 0;
        if (atomic_load(&sch->turn) == t->turn && atomic_load(&sch->owner) == index + 1 &&
            !slice_sched_contended(shm, index, now)) {
                /* Uncontended time is free: count it as used, but do not charge it. */
                if (sch->first_ns && now > sch->first_ns)
                        atomic_fetch_add(&s->gpu_ns, now - sch->first_ns);
                sch->first_ns = now;
                sch->last_ns = 0;
                s->deficit_ns = (int64_t) sch->quantum_ns;
                t->deadline_ns = now + sch->quantum_ns;
                atomic_store(&sch->deadline_ns, t->deadline_ns);
                r = 1;
        }
        return r;
}

void slice_sched_blocked(struct slice_shm *shm, uint32_t turn, int delta) {
        if (atomic_load(&shm->sched.turn) == turn && atomic_load(&shm->sched.owner) != 0) {
                shm->sched.blocked += delta;
                if (shm->sched.blocked < 0)
                        shm->sched.blocked = 0;
        }
}

void slice_sched_leave(struct slice_shm *shm, unsigned index, uint32_t turn, uint64_t end_ns, uint64_t now,
                       bool again) {
        struct slice_sched *sch = &shm->sched;
        if (index >= SLICE_MAX)
                return;
        struct slice_sched_slot *s = &shm->slices[index];
        /* A participant leaving at the deadline with more to launch still wants the GPU: say so
         * before the close below deals out the next round. Its last word was at the turn's
         * start, and a turn that overran WANT_QUANTA would drop it from the very round that
         * pays for that turn: the others were credited a quantum, it nothing. */
        if (again)
                atomic_store_explicit(&s->want_ns, now, memory_order_relaxed);
        if (atomic_load(&sch->turn) == turn && atomic_load(&sch->owner) == index + 1) {
                if (end_ns > sch->last_ns)
                        sch->last_ns = end_ns;
                sch->participants--;
                pid_t me = getpid();
                for (unsigned i = 0; i < SLICE_PARTS_MAX; i++)
                        if (sch->parts[i].pid == me) {
                                sch->parts[i] = (struct slice_part){};
                                break;
                        }
                if (sch->participants <= 0)
                        close_turn(shm, now, false, -1);
        } else if (s->forced_turn == turn && end_ns > s->forced_end_ns) {
                /* Closed without us: what ran after that is an overrun, paid now. */
                charge_slice(s, end_ns - s->forced_end_ns, now, sch->quantum_ns);
                /* ...and by us alone: a turn granted since then could not use the GPU before our
                 * work ended (its first work queued behind ours), so its time starts there. */
                if (atomic_load(&sch->owner) != 0 && sch->grant_ns >= s->forced_end_ns && sch->first_ns &&
                    sch->first_ns < end_ns)
                        sch->first_ns = end_ns;
        }
}

int slice_sched_find(const struct slice_shm *shm, const char *name) {
        for (unsigned i = 0; i < SLICE_MAX; i++) {
                const struct slice_sched_slot *s = &shm->slices[i];
                if (atomic_load(&s->state) == SLICE_STATE_ACTIVE &&
                    strncmp(s->name, name, sizeof(s->name)) == 0)
                        return (int) i;
        }
        return -ENOENT;
}

int slice_sched_add(struct slice_shm *shm, const struct slice_params *p, unsigned *ret_index,
                    struct vgpu_error *err) {
        int r = slice_params_check(p, err);
        if (r < 0)
                return r;
        if (slice_sched_find(shm, p->name) >= 0)
                return vgpu_error_set(err, -EEXIST, "slice %s exists already", p->name);
        unsigned fixed_total = p->policy == SLICE_POLICY_FIXED_SHARE ? p->weight : 0;
        for (unsigned i = 0; i < SLICE_MAX; i++) {
                const struct slice_sched_slot *s = &shm->slices[i];
                if (atomic_load(&s->state) == SLICE_STATE_ACTIVE && s->policy == SLICE_POLICY_FIXED_SHARE)
                        fixed_total += s->weight;
        }
        if (fixed_total > 100)
                return vgpu_error_set(err, -EINVAL, "slice %s: fixed shares on this GPU would add up to %u%%",
                                      p->name, fixed_total);
        for (unsigned i = 0; i < SLICE_MAX; i++) {
                struct slice_sched_slot *s = &shm->slices[i];
                if (atomic_load(&s->state) != SLICE_STATE_FREE)
                        continue;
                *s = (struct slice_sched_slot){
                        .state = SLICE_STATE_ACTIVE,
                        .policy = p->policy,
                        .weight = p->policy == SLICE_POLICY_FIXED_SHARE ? p->weight : 100,
                        .deficit_ns = (int64_t) shm->sched.quantum_ns,
                        .budget_stamp_ns = slice_now_ns(),
                };
                snprintf(s->name, sizeof(s->name), "%s", p->name);
                atomic_fetch_add(&shm->generation, 1);
                if (ret_index)
                        *ret_index = i;
                return 0;
        }
        return vgpu_error_set(err, -ENOSPC, "slice %s: all %u slices of this GPU are in use", p->name,
                              SLICE_MAX);
}

int slice_sched_remove(struct slice_shm *shm, unsigned index, const char *name) {
        if (index >= SLICE_MAX)
                return -ENOENT;
        struct slice_sched_slot *s = &shm->slices[index];
        if (atomic_load(&s->state) != SLICE_STATE_ACTIVE || strncmp(s->name, name, sizeof(s->name)) != 0)
                return -ENOENT;
        if (atomic_load(&shm->sched.owner) == index + 1)
                atomic_store(&shm->sched.owner, 0); /* nobody is left to end its turn */
        *s = (struct slice_sched_slot){};
        atomic_fetch_add(&shm->generation, 1);
        return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * turn.c — this process's part in its GPU's time slices (lib/slice/slice-sched.c): wait for the
 * slice's turn before a launch, and at the turn's end wait for the work launched in it and
 * report when that work completed, measured with CUDA events: one recorded before the turn's
 * first launch, and the fence after its last (the GPU time used, not the host's time to notice).
 *
 * Launches are asynchronous and a turn cannot be taken back from the GPU, so the process also
 * bounds how far it runs ahead of the GPU: a fence event after every K launches measures the
 * average GPU time of a launch, and a launch waits while the work still queued (launches not
 * known complete, times that average) would outlast the turn. Without that a 2 ms turn could
 * queue seconds of kernels; with it the turn ends about when its work does. K adapts so that
 * fences stay rare for short kernels (one per quarter turn of work, at most every 64 launches).
 * A lone equal-share slice may run four quanta ahead (nobody waits for its turn to end).
 *
 * One set of state per process (every thread of a process shares its slice's turn), under one
 * mutex held for a few dozen nanoseconds per launch. The GPU's scheduler state is a file every
 * tenant can write, so it is never mapped (sched-file.c): a launch inside the turn reads only
 * this process's copy of the turn and its deadline (no other process can end a turn before its
 * deadline); the file is read and written at the turn's boundaries, and a quarter quantum apart
 * to see whether other slices wait.
 */
#include <string.h>
#include <unistd.h>

#include "shim.h"

#define RING             32 /* fences outstanding at most */
#define FENCE_EVERY_MAX  64 /* launches per fence at most */
#define UNGATED_RETRY_NS UINT64_C(1000000000)

static struct {
        pthread_mutex_t lock;
        _Atomic uint32_t turn; /* the turn we take part in, 0: none */
        _Atomic uint64_t deadline;
        _Atomic bool contended;
        _Atomic uint64_t contention_next;
        uint64_t t0;              /* host time of the start event */
        CUcontext ctx;            /* the events' context */
        CUevent start, end, done; /* done: the last fence seen complete */
        bool started, have_done;
        bool blocked;         /* counted in the file as waiting for the GPU */
        CUstream first, last; /* streams of the turn's first and last launch */
        pid_t last_tid;       /* thread of a per-thread default stream, else 0 */
        bool last_valid, multi_stream;
        CUevent ring[RING];
        unsigned ring_launches[RING]; /* launches each fence closes */
        unsigned tail, count;
        unsigned since_fence;     /* launches after the newest fence */
        uint64_t fenced_launches; /* launches behind fences not yet seen complete */
        uint64_t avg_ns;          /* average GPU time per launch, from fences */
        uint64_t ungated_until;   /* after the scheduler failed: launches pass until then */
        bool warned;
} P = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* The scheduler calls on the file's state, under its lock; -errno when it cannot be had. */
static int sched_enter(uint64_t now, struct slice_sched_ticket *t, uint32_t *wake, uint64_t *until) {
        struct slice_shm *shm;
        int r = slice_sched_file_begin(shim.sched, &shm);
        if (r < 0)
                return r;
        r = slice_sched_enter(shm, shim.index, now, t, wake, until);
        slice_sched_file_end(shim.sched, true);
        return r;
}

static int sched_extend(struct slice_sched_ticket *t, uint64_t now) {
        struct slice_shm *shm;
        if (slice_sched_file_begin(shim.sched, &shm) < 0)
                return 0;
        int r = slice_sched_extend(shm, shim.index, t, now);
        slice_sched_file_end(shim.sched, r > 0);
        return r;
}

static void sched_blocked(uint32_t turn, int delta) {
        struct slice_shm *shm;
        if (slice_sched_file_begin(shim.sched, &shm) < 0)
                return;
        slice_sched_blocked(shm, turn, delta);
        slice_sched_file_end(shim.sched, true);
}

/* Stop waiting for the GPU and leave the turn in one step: a participant seen neither waiting
 * nor gone after the grace may have its turn closed under it (slice-sched.c: closeable). */
static void sched_leave(uint32_t turn, uint64_t end, uint64_t now, bool again) {
        struct slice_shm *shm;
        if (slice_sched_file_begin(shim.sched, &shm) < 0)
                return;
        if (P.blocked)
                slice_sched_blocked(shm, turn, -1);
        slice_sched_leave(shm, shim.index, turn, end, now, again);
        slice_sched_file_end(shim.sched, true);
}

/* Tell the file whether this process waits for its GPU work (P.lock held). */
static void set_blocked(bool on) {
        if (P.blocked == on)
                return;
        sched_blocked(atomic_load(&P.turn), on ? +1 : -1);
        P.blocked = on;
}

static bool sched_contended(uint64_t now) {
        struct slice_shm shm;
        return slice_sched_file_read(shim.sched, &shm, NULL) == 0 &&
               slice_sched_contended(&shm, shim.index, now);
}

static bool active(void) {
        return shim.mode == SHIM_ON && shim.gated;
}

/* The stream a launch really goes to, and the thread it belongs to if it is per-thread. */
static CUstream effective(CUstream s, bool per_thread, pid_t *ret_tid) {
        if (s == CU_STREAM_PER_THREAD || (per_thread && !s)) {
                *ret_tid = gettid();
                return CU_STREAM_PER_THREAD;
        }
        *ret_tid = 0;
        return s;
}

static void forget_events(bool destroy) {
        shim_pfn_cuEventDestroy_v2 del = destroy ? REAL(cuEventDestroy_v2) : NULL;
        CUevent *all[] = { &P.start, &P.end, &P.done };
        for (size_t i = 0; i < ELEMENTSOF(all); i++) {
                if (del && *all[i])
                        del(*all[i]);
                *all[i] = NULL;
        }
        for (unsigned i = 0; i < RING; i++) {
                if (del && P.ring[i])
                        del(P.ring[i]);
                P.ring[i] = NULL;
        }
        P.ctx = NULL;
}

static CUevent ensure_event(CUevent *ev) {
        if (!*ev && REAL(cuEventCreate)(ev, CU_EVENT_DEFAULT) != CUDA_SUCCESS)
                *ev = NULL;
        return *ev;
}

static void retire(void) {
        while (P.count > 0) {
                CUevent ev = P.ring[P.tail];
                unsigned launches = P.ring_launches[P.tail];
                if (REAL(cuEventQuery)(ev) != CUDA_SUCCESS)
                        break;
                /* The turn's first fence measures from the start event, recorded just before the
                 * turn's first launch: a tenant of kernels longer than a turn completes one fence
                 * per turn, and would otherwise never learn their length. */
                CUevent ref = P.have_done ? P.done : P.started ? P.start : NULL;
                float ms;
                if (ref && launches && REAL(cuEventElapsedTime)(&ms, ref, ev) == CUDA_SUCCESS && ms >= 0) {
                        uint64_t d = (uint64_t) ((double) ms * 1e6) / launches;
                        P.avg_ns = P.avg_ns ? (3 * P.avg_ns + d) / 4 : d;
                }
                /* Keep the completed fence as the new reference; its old object refills the ring. */
                P.ring[P.tail] = P.done;
                P.done = ev;
                P.have_done = true;
                P.fenced_launches -= launches;
                P.tail = (P.tail + 1) % RING;
                P.count--;
        }
}

/* The fence recorded after the turn's last launch, if there is one (P.lock held). */
static CUevent last_fence(void) {
        if (P.since_fence > 0)
                return NULL;
        if (P.count > 0)
                return P.ring[(P.tail + P.count - 1) % RING];
        return P.have_done ? P.done : NULL;
}

/* Drain: wait for all work of the turn, return when it completed on the host clock. */
static uint64_t drain(void) {
        CUcontext cur = NULL;
        REAL(cuCtxGetCurrent)(&cur);
        bool push = P.ctx && cur != P.ctx;
        if (push && REAL(cuCtxPushCurrent_v2)(P.ctx) != CUDA_SUCCESS)
                return slice_now_ns();
        /* The turn's work ended when its last launch completed, on the GPU's clock when one
         * stream carried it all: the fence after that launch, if one was recorded. Otherwise an
         * end event recorded now (if we may address that stream from this thread), which is
         * exact only while work is still queued: recorded on an idle stream it completes when
         * the host got here, and a turn closed that way would be charged for the host's
         * reaction time (waking from the last fence, coming here) as if it were GPU time. That
         * idle tail is what a throttled tenant of short kernels ends every turn with. Without
         * either, the host clock after the sync. */
        CUevent end_ev = NULL;
        if (P.started && P.last_valid && !P.multi_stream) {
                end_ev = last_fence();
                if (!end_ev && (!P.last_tid || P.last_tid == gettid()) && ensure_event(&P.end) &&
                    REAL(cuEventRecord)(P.end, P.last) == CUDA_SUCCESS)
                        end_ev = P.end;
        }
        REAL(cuCtxSynchronize)();
        uint64_t end = slice_now_ns();
        float ms;
        if (end_ev && REAL(cuEventElapsedTime)(&ms, P.start, end_ev) == CUDA_SUCCESS && ms >= 0) {
                uint64_t e = P.t0 + (uint64_t) ((double) ms * 1e6);
                if (e < end)
                        end = e;
        }
        if (push) {
                CUcontext dummy;
                REAL(cuCtxPopCurrent_v2)(&dummy);
        }
        return end;
}

/* Leave the turn; again: this process launches on and asks for the next turn at once. */
static void leave(bool again) {
        uint32_t turn = atomic_load(&P.turn);
        set_blocked(true);
        uint64_t end = drain();
        sched_leave(turn, end, slice_now_ns(), again);
        P.blocked = false;
        retire(); /* all complete now: what they measured is the next turn's estimate */
        atomic_store(&P.turn, 0);
        P.count = P.since_fence = 0;
        P.fenced_launches = 0;
        P.have_done = false;
}

static void join(const struct slice_sched_ticket *t, CUstream stream, bool per_thread, uint64_t now) {
        atomic_store(&P.deadline, t->deadline_ns);
        P.t0 = now;
        P.started = P.last_valid = P.multi_stream = false;
        P.count = P.since_fence = 0;
        P.fenced_launches = 0;
        P.have_done = false;
        pid_t tid;
        P.first = effective(stream, per_thread, &tid);
        CUcontext ctx = NULL;
        if (REAL(cuCtxGetCurrent)(&ctx) == CUDA_SUCCESS && ctx) {
                if (ctx != P.ctx) {
                        forget_events(true);
                        P.ctx = ctx;
                }
                P.started = ensure_event(&P.start) && REAL(cuEventRecord)(P.start, P.first) == CUDA_SUCCESS;
        }
        atomic_store(&P.turn, t->turn);
}

/* Get this process into its slice's current turn (P.lock held). */
static void enter(CUstream stream, bool per_thread) {
        for (;;) {
                uint64_t now = slice_now_ns();
                uint32_t mine = atomic_load(&P.turn);
                if (mine) {
                        if (now < atomic_load(&P.deadline))
                                return;
                        /* past the deadline: extended when nobody else waits (the file says
                         * whether the turn is still ours), else over */
                        struct slice_sched_ticket t = { .turn = mine,
                                                        .deadline_ns = atomic_load(&P.deadline) };
                        if (sched_extend(&t, now)) {
                                atomic_store(&P.deadline, t.deadline_ns);
                                set_blocked(false);
                                return;
                        }
                        leave(true);
                        continue;
                }
                struct slice_sched_ticket t;
                uint32_t wake;
                uint64_t until;
                int r = sched_enter(now, &t, &wake, &until);
                if (r == 0) {
                        join(&t, stream, per_thread, now);
                        return;
                }
                if (r != -EAGAIN) {
                        /* A broken scheduler (or one another tenant sits on) must not stop the
                         * application: run ungated, and look again only a second later, so that
                         * waiting for its lock is not paid at every launch. */
                        if (!P.warned)
                                shim_log(SHIM_LOG_ERROR, "scheduler unusable (%s); launches are not gated",
                                         strerror(-r));
                        P.warned = true;
                        P.ungated_until = slice_now_ns() + UNGATED_RETRY_NS;
                        return;
                }
                slice_sched_file_wait(shim.sched, wake, until);
        }
}

static bool contended(uint64_t now) {
        if (now >= atomic_load_explicit(&P.contention_next, memory_order_relaxed)) {
                atomic_store_explicit(&P.contended, sched_contended(now), memory_order_relaxed);
                atomic_store_explicit(&P.contention_next, now + shim.quantum_ns / 4, memory_order_relaxed);
        }
        return atomic_load_explicit(&P.contended, memory_order_relaxed);
}

/* How much queued GPU work the process may have now (P.lock held). */
static uint64_t allowed_backlog(uint64_t now) {
        uint64_t deadline = atomic_load(&P.deadline), q = shim.quantum_ns;
        uint64_t remaining = deadline > now ? deadline - now : 0;
        bool lone = shim.slice->policy == SLICE_POLICY_EQUAL_SHARE &&
                    !atomic_load_explicit(&P.contended, memory_order_relaxed);
        return lone ? remaining + 4 * q : remaining;
}

/* Record a fence on stream s after the launches since the newest one (P.lock held). */
static void fence(CUstream s) {
        if (!P.ctx)
                return;
        if (P.count == RING) {
                REAL(cuEventSynchronize)(P.ring[P.tail]);
                retire();
        }
        unsigned i = (P.tail + P.count) % RING;
        if (ensure_event(&P.ring[i]) && REAL(cuEventRecord)(P.ring[i], s) == CUDA_SUCCESS) {
                P.ring_launches[i] = P.since_fence;
                P.fenced_launches += P.since_fence;
                P.since_fence = 0;
                P.count++;
        }
}

/* Wait while the queued work would outlast what the turn allows (P.lock held). While the
 * length of a launch is unknown, two fences may be in flight. */
static void throttle(void) {
        for (int retired = 0;; retired = 1) {
                uint64_t queued = P.fenced_launches + P.since_fence;
                bool over = P.avg_ns ? queued * P.avg_ns > allowed_backlog(slice_now_ns()) : P.count >= 2;
                if (!over || P.count == 0)
                        return;
                if (!retired) {
                        retire(); /* the estimate counts fences not yet looked at */
                        continue;
                }
                /* Fence the launches after the newest fence before waiting: should the turn end
                 * after the wait, its last launch is timed by a fence (drain), not by an event
                 * recorded once the host came back to an idle GPU. */
                if (P.since_fence > 0 && P.last_valid && (!P.last_tid || P.last_tid == gettid()))
                        fence(P.last);
                set_blocked(true); /* until the gate sees whether the turn goes on */
                REAL(cuEventSynchronize)(P.ring[P.tail]);
                retire();
        }
}

void shim_turn_gate(CUstream stream, bool per_thread) {
        if (!active() || !shim_cuda_ready())
                return;
        uint64_t now = slice_now_ns();
        pthread_mutex_lock(&P.lock);
        uint32_t mine = atomic_load(&P.turn);
        if (now < P.ungated_until) {
                pthread_mutex_unlock(&P.lock);
                return;
        }
        if (mine && now < atomic_load(&P.deadline)) {
                contended(now);
                throttle();
                /* Past the deadline the process goes on to wait for the rest of its work (leave),
                 * still counted as waiting: no gap in which the turn looks idle. */
                if (slice_now_ns() >= atomic_load(&P.deadline))
                        enter(stream, per_thread);
                else
                        set_blocked(false);
        } else
                enter(stream, per_thread);
        pthread_mutex_unlock(&P.lock);
}

void shim_turn_launched(CUstream stream, bool per_thread) {
        if (!active() || !shim_cuda_ready())
                return;
        pthread_mutex_lock(&P.lock);
        if (atomic_load(&P.turn)) {
                pid_t tid;
                CUstream s = effective(stream, per_thread, &tid);
                if (s != P.first || (P.last_valid && tid != P.last_tid))
                        P.multi_stream = true;
                P.last = s;
                P.last_tid = tid;
                P.last_valid = true;
                P.since_fence++;
                /* A fence every K launches: K launches of average length fill a quarter turn. */
                uint64_t q = shim.quantum_ns, k = P.avg_ns ? q / 4 / P.avg_ns : 1;
                k = k < 1 ? 1 : k > FENCE_EVERY_MAX ? FENCE_EVERY_MAX : k;
                if (P.since_fence >= k)
                        fence(s);
        }
        pthread_mutex_unlock(&P.lock);
}

void shim_turn_stream_destroyed(CUstream stream) {
        if (!active())
                return;
        pthread_mutex_lock(&P.lock);
        if (P.last_valid && P.last == stream) {
                P.last_valid = false; /* its handle may be reused: measure on the host clock */
                P.multi_stream = true;
        }
        pthread_mutex_unlock(&P.lock);
}

void shim_turn_exit(void) {
        if (!active() || !shim_cuda_ready())
                return;
        pthread_mutex_lock(&P.lock);
        if (atomic_load(&P.turn))
                leave(false);
        forget_events(true);
        pthread_mutex_unlock(&P.lock);
}

void shim_turn_atfork_child(void) {
        pthread_mutex_init(&P.lock, NULL);
        atomic_store(&P.turn, 0);
        P.count = P.since_fence = 0;
        P.fenced_launches = 0;
        P.have_done = P.started = P.last_valid = P.blocked = false;
        forget_events(false); /* the parent's; the child cannot use them */
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-slice.c — lib/slice: a slice's region (create, read, map, versions, hand-written
 * settings, truncation), charges (exact quota under concurrency, dead processes' charges
 * returned, pid reuse not mistaken for life), the scheduler file (lock of a dead or hostile
 * holder, garbage and truncation by a tenant) and the scheduler's arithmetic on a simulated
 * clock: equal-share and fixed-share shares, the hard cap on an idle GPU, a turn whose holder died.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-util.h"

#include "slice/slice.h"
#include "vgpu/slice.h"

#define MiB (UINT64_C(1) << 20)
#define MS  UINT64_C(1000000)

static char dir[64], path[128];

static int setup(void **state) {
        (void) state;
        snprintf(dir, sizeof(dir), "/tmp/vgpu-test-slice.XXXXXX");
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/region", dir);
        return 0;
}

static int teardown(void **state) {
        (void) state;
        unlink(path);
        return rmdir(dir);
}

/* A slice's own region at path, mapped. */
static struct slice_region *fresh_slice(const char *name, uint64_t quota) {
        struct slice_region *r = NULL;
        struct vgpu_error err = {};
        struct slice_params p = { .name = name, .quota = quota, .policy = SLICE_POLICY_BEST_EFFORT };
        unlink(path);
        assert_int_equal(slice_region_create(path, "0000:3b:00.0", 0, &p, 0600, &err), 0);
        assert_int_equal(slice_region_open(path, &r, &err), 0);
        return r;
}

/* A scheduler's state, in memory: the functions of slice-sched.c work on such a copy. */
static void fresh_sched(struct slice_shm *shm) {
        assert_int_equal(slice_sched_init(shm, NULL), 0);
}

static unsigned add(struct slice_shm *shm, const char *name, enum slice_policy policy, unsigned weight) {
        unsigned i;
        struct slice_params p = { .name = name, .policy = policy, .weight = weight };
        assert_int_equal(slice_sched_add(shm, &p, &i, NULL), 0);
        return i;
}

static void test_region(void **state) {
        (void) state;
        struct vgpu_error err = {};
        _cleanup_slice_region_ struct slice_region *r = fresh_slice("train", 4ull << 30);
        struct slice_params p = { .name = "train", .policy = SLICE_POLICY_FIXED_SHARE, .weight = 30 };
        assert_int_equal(slice_region_create(path, "0000:3b:00.0", 0, &p, 0600, &err), -EEXIST);
        p.name = "bad name";
        assert_int_equal(slice_region_create(path, "0000:3b:00.0", 0, &p, 0600, &err), -EINVAL);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);

        /* read back with pread; another version is refused, by the reader and the mapper */
        struct slice_file f;
        assert_int_equal(slice_region_read(path, &f, &err), 0);
        assert_string_equal(f.slice.name, "train");
        assert_string_equal(f.gpu_bdf, "0000:3b:00.0");
        assert_int_equal(f.slice.quota, 4ull << 30);
        slice_region_file(r)->version = 99;
        struct slice_region *v = NULL;
        assert_int_equal(slice_region_open(path, &v, &err), -EPROTO);
        assert_int_equal(slice_region_read(path, &f, &err), -EPROTO);
        slice_region_file(r)->version = SLICE_FILE_VERSION;
        slice_region_slice(r)->policy = 7; /* written by hand */
        assert_int_equal(slice_region_read(path, &f, &err), -EPROTO);
        assert_non_null(strstr(err.message, "an unknown policy"));
        slice_region_slice(r)->policy = SLICE_POLICY_BEST_EFFORT;
        assert_int_equal(truncate(path, 100), 0);
        assert_int_equal(slice_region_read(path, &f, &err), -EPROTO);
        assert_non_null(strstr(err.message, "100 bytes"));

        /* the scheduler's slots */
        struct slice_shm shm;
        fresh_sched(&shm);
        add(&shm, "train", SLICE_POLICY_FIXED_SHARE, 30);
        p = (struct slice_params){ .name = "train", .policy = SLICE_POLICY_EQUAL_SHARE };
        assert_int_equal(slice_sched_add(&shm, &p, NULL, &err), -EEXIST);
        p = (struct slice_params){ .name = "bad name", .policy = SLICE_POLICY_EQUAL_SHARE };
        assert_int_equal(slice_sched_add(&shm, &p, NULL, &err), -EINVAL);
        p = (struct slice_params){ .name = "big", .policy = SLICE_POLICY_FIXED_SHARE, .weight = 71 };
        assert_int_equal(slice_sched_add(&shm, &p, NULL, &err), -EINVAL); /* 30 + 71 > 100 */
        assert_non_null(strstr(err.message, "101%"));
        int i = slice_sched_find(&shm, "train");
        assert_true(i >= 0);
        assert_int_equal(slice_sched_remove(&shm, (unsigned) i, "other"), -ENOENT);
        assert_int_equal(slice_sched_remove(&shm, (unsigned) i, "train"), 0);
        assert_int_equal(slice_sched_find(&shm, "train"), -ENOENT);

        assert_int_equal(slice_policy_from_string("equal-share"), SLICE_POLICY_EQUAL_SHARE);
        assert_int_equal(slice_scrub_from_string("on-exit"), SLICE_SCRUB_ON_EXIT);
        assert_int_equal(slice_scrub_from_string("sometimes"), -EINVAL);
        assert_string_equal(slice_policy_to_string(SLICE_POLICY_FIXED_SHARE), "fixed-share");
}

/* The scheduler file: written under its lock, read back checked; a tenant's truncation or
 * garbage is an error (or repaired), never a crash; a lock whose holder died is free again,
 * one a live process sits on is given up on. */
static void test_sched_file(void **state) {
        (void) state;
        struct vgpu_error err = {};
        char sp[160];
        snprintf(sp, sizeof(sp), "%s/sched", dir);
        unlink(sp);
        struct slice_gpu_params bad = { .quantum_ns = 40 * MS };
        assert_int_equal(slice_sched_file_create(sp, &bad, 0600, NULL, &err), -EINVAL);
        _cleanup_sched_file_ struct slice_sched_file *f = NULL;
        assert_int_equal(slice_sched_file_create(sp, &(struct slice_gpu_params){ .bdf = "0000:3b:00.0" },
                                                 0600, &f, &err),
                         0);
        struct slice_shm *shm, copy;
        assert_int_equal(slice_sched_file_begin(f, &shm), 0);
        unsigned a = add(shm, "a", SLICE_POLICY_EQUAL_SHARE, 0);
        shm->slices[a].deficit_ns = INT64_MIN; /* as a hostile tenant would */
        assert_int_equal(slice_sched_file_end(f, true), 0);
        assert_int_equal(slice_sched_file_read(f, &copy, &err), 0);
        assert_int_equal(slice_sched_find(&copy, "a"), (int) a);
        assert_int_equal(copy.slices[a].deficit_ns, 0); /* repaired on the way in */

        pid_t child = fork();
        if (child == 0) {
                struct slice_shm *mine;
                _exit(slice_sched_file_begin(f, &mine) == 0 ? 0 : 1); /* and dies holding the lock */
        }
        int status;
        waitpid(child, &status, 0);
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_int_equal(slice_sched_file_begin(f, &shm), 0);
        assert_int_equal(slice_sched_file_end(f, false), 0);

        int hog[2];
        assert_int_equal(pipe(hog), 0);
        child = fork();
        if (child == 0) {
                int fd = open(sp, O_RDONLY);
                flock(fd, LOCK_EX);
                (void) write(hog[1], "x", 1);
                pause(); /* sits on the lock */
                _exit(0);
        }
        char c;
        assert_int_equal(read(hog[0], &c, 1), 1);
        uint64_t t0 = slice_now_ns();
        assert_int_equal(slice_sched_file_begin(f, &shm), -EBUSY);
        assert_true(slice_now_ns() - t0 < 500 * MS);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        close(hog[0]);
        close(hog[1]);

        /* truncated by a tenant: an error for every user, and waiting still times out */
        assert_int_equal(truncate(sp, 0), 0);
        assert_int_equal(slice_sched_file_read(f, &copy, &err), -EPROTO);
        assert_int_equal(slice_sched_file_begin(f, &shm), -EPROTO);
        t0 = slice_now_ns();
        slice_sched_file_wait(f, 0, t0 + 2 * MS);
        assert_true(slice_now_ns() - t0 >= 2 * MS);
        unlink(sp);
}

static void test_charge(void **state) {
        (void) state;
        _cleanup_slice_region_ struct slice_region *r = fresh_slice("a", 64 * MiB);
        struct slice *s = slice_region_slice(r);
        s->granularity = 2 * MiB;
        s->proc_overhead = 4 * MiB;
        struct slice_proc *p;
        assert_int_equal(slice_attach(s, &p), 0);
        assert_int_equal(atomic_load(&s->used), 4 * MiB); /* the context's overhead */
        assert_int_equal(slice_round(s, 1), 2 * MiB);
        assert_int_equal(slice_charge(s, p, 58 * MiB), 0);
        assert_int_equal(slice_charge(s, p, 4 * MiB), -EDQUOT);
        assert_int_equal(slice_charge(s, p, 2 * MiB), 0);
        assert_int_equal(atomic_load(&s->used), 64 * MiB);
        slice_uncharge(s, p, 10 * MiB);
        assert_int_equal(atomic_load(&s->used), 54 * MiB);
        assert_int_equal(slice_count_procs(s), 1);
        slice_detach(s, p);
        assert_int_equal(atomic_load(&s->used), 0);
        assert_int_equal(atomic_load(&s->peak), 64 * MiB);
        assert_int_equal(slice_count_procs(s), 0);
}

struct racer {
        struct slice *s;
        struct slice_proc *p;
        unsigned got;
};

static void *race(void *arg) {
        struct racer *r = arg;
        while (slice_charge(r->s, r->p, 4096) == 0)
                r->got++;
        return NULL;
}

/* Eight threads charging one page at a time get exactly the quota between them. */
static void test_charge_race(void **state) {
        (void) state;
        _cleanup_slice_region_ struct slice_region *r = fresh_slice("a", 64 * MiB);
        struct slice *s = slice_region_slice(r);
        struct slice_proc *p;
        assert_int_equal(slice_attach(s, &p), 0);
        pthread_t t[8];
        struct racer rs[8];
        for (int k = 0; k < 8; k++) {
                rs[k] = (struct racer){ .s = s, .p = p };
                pthread_create(&t[k], NULL, race, &rs[k]);
        }
        unsigned total = 0;
        for (int k = 0; k < 8; k++) {
                pthread_join(t[k], NULL);
                total += rs[k].got;
        }
        assert_int_equal(total, 64 * MiB / 4096);
        assert_int_equal(atomic_load(&s->used), 64 * MiB);
        assert_int_equal(atomic_load(&p->bytes), 64 * MiB);
        slice_detach(s, p);
}

/* A child charges 40 MiB and is killed: its charge comes back, zombie or reaped. */
static void test_reclaim(void **state) {
        (void) state;
        _cleanup_slice_region_ struct slice_region *r = fresh_slice("a", 64 * MiB);
        struct slice *s = slice_region_slice(r);
        int ready[2];
        assert_int_equal(pipe(ready), 0);
        pid_t child = fork();
        if (child == 0) {
                struct slice_proc *p;
                if (slice_attach(s, &p) == 0 && slice_charge(s, p, 40 * MiB) == 0)
                        (void) !write(ready[1], "x", 1);
                pause();
                _exit(0);
        }
        char c;
        assert_int_equal(read(ready[0], &c, 1), 1);
        assert_int_equal(slice_reclaim_dead(s), 0); /* alive: untouched */
        assert_int_equal(atomic_load(&s->used), 40 * MiB);
        kill(child, SIGKILL);
        while (proc_alive(child, 0)) /* until it is a zombie */
                usleep(1000);
        assert_int_equal(slice_reclaim_dead(s), 1);
        assert_int_equal(atomic_load(&s->used), 0);
        assert_int_equal(slice_count_procs(s), 0);
        waitpid(child, NULL, 0);
        close(ready[0]);
        close(ready[1]);
}

/* A slot naming a live pid with another start time belongs to a dead process whose pid was reused. */
static void test_pid_reuse(void **state) {
        (void) state;
        _cleanup_slice_region_ struct slice_region *r = fresh_slice("a", 64 * MiB);
        struct slice *s = slice_region_slice(r);
        pid_t live = getppid();
        uint64_t start = proc_start_time(live);
        assert_true(start > 0);
        struct slice_proc *p = &s->procs[3];
        atomic_store(&p->owner, (uint64_t) (uint32_t) live);
        atomic_store(&p->pidns, proc_pidns());
        atomic_store(&p->start_time, start);
        atomic_store(&p->bytes, 8 * MiB);
        atomic_store(&s->used, 8 * MiB);
        assert_int_equal(slice_reclaim_dead(s), 0);
        atomic_store(&p->start_time, start + 1);
        assert_int_equal(slice_reclaim_dead(s), 1);
        assert_int_equal(atomic_load(&s->used), 0);
        /* Slots of another pid namespace are not ours to judge. */
        atomic_store(&p->owner, (UINT64_C(5) << 32) | 999999);
        atomic_store(&p->pidns, proc_pidns() + 1);
        assert_int_equal(slice_reclaim_dead(s), 0);
}

/* ---- the scheduler on a simulated clock ---- */

struct tenant {
        unsigned slice;
        uint64_t kernel; /* length of its kernels: a turn runs whole kernels */
        uint64_t got;
};

/* Every tenant always wants the GPU; run for `span` and count each one's GPU time. */
static uint64_t simulate(struct slice_shm *shm, struct tenant *t, int n, uint64_t span) {
        /* The clock of the slices' creation (budgets refill from then) plus a little. */
        uint64_t now = slice_now_ns() + MS, end = now + span, busy = 0;
        while (now < end) {
                int granted = -1;
                struct slice_sched_ticket ticket = {}, tk;
                uint64_t until = UINT64_MAX;
                for (int k = 0; k < n; k++) {
                        uint32_t wake;
                        uint64_t u;
                        if (slice_sched_enter(shm, t[k].slice, now, &tk, &wake, &u) == 0) {
                                granted = k;
                                ticket = tk;
                        } else if (u < until)
                                until = u;
                }
                if (granted < 0) {
                        now = until > now ? until : now + 100000;
                        continue;
                }
                /* Kernels until the deadline has passed, at least one: overruns happen. */
                uint64_t len = t[granted].kernel;
                while (now + len < ticket.deadline_ns)
                        len += t[granted].kernel;
                slice_sched_leave(shm, t[granted].slice, ticket.turn, now + len, now + len, true);
                t[granted].got += len;
                busy += len;
                now += len;
        }
        return busy;
}

static double share(const struct tenant *t, int n, int k) {
        uint64_t total = 0;
        for (int i = 0; i < n; i++)
                total += t[i].got;
        return total ? (double) t[k].got / (double) total : 0;
}

static void test_sched_equal(void **state) {
        (void) state;
        struct slice_shm sched, *shm = &sched;
        fresh_sched(shm);
        struct tenant t[] = {
                { add(shm, "small", SLICE_POLICY_EQUAL_SHARE, 0), 1 * MS / 4, 0 },
                { add(shm, "mid", SLICE_POLICY_EQUAL_SHARE, 0), 3 * MS, 0 },
                { add(shm, "large", SLICE_POLICY_EQUAL_SHARE, 0), 8 * MS, 0 },
        };
        uint64_t busy = simulate(shm, t, 3, 3000 * MS);
        double sum = 0, sq = 0;
        for (int k = 0; k < 3; k++) {
                double x = share(t, 3, k);
                sum += x;
                sq += x * x;
                print_message("equal-share %s: %.1f %%\n", shm->slices[t[k].slice].name, 100 * x);
                assert_true(x > 0.30 && x < 0.37);
        }
        assert_true(sum * sum / (3 * sq) >= 0.99); /* Jain's index */
        assert_true(busy >= 3000 * MS);            /* never idle */
}

static void test_sched_fixed(void **state) {
        (void) state;
        struct slice_shm sched, *shm = &sched;
        fresh_sched(shm);
        struct tenant t[] = {
                { add(shm, "a30", SLICE_POLICY_FIXED_SHARE, 30), 1 * MS, 0 },
                { add(shm, "b70", SLICE_POLICY_FIXED_SHARE, 70), 5 * MS, 0 },
        };
        simulate(shm, t, 2, 3000 * MS);
        print_message("fixed-share 30/70: %.1f / %.1f %%\n", 100 * share(t, 2, 0), 100 * share(t, 2, 1));
        assert_true(share(t, 2, 0) > 0.28 && share(t, 2, 0) < 0.32);

        /* Alone, 30 % is still all it gets: a cap, even on an idle GPU. */
        struct slice_shm state2;
        fresh_sched(&state2);
        struct tenant alone[] = { { add(&state2, "a30", SLICE_POLICY_FIXED_SHARE, 30), 1 * MS, 0 } };
        uint64_t busy = simulate(&state2, alone, 1, 3000 * MS);
        print_message("fixed-share 30 alone: %.1f %% of the time\n", 100.0 * (double) busy / (3000.0 * MS));
        assert_true(busy > 870 * MS && busy < 930 * MS);
}

/* The stage of the scheduler's turn-by-turn tests: two equal-share slices, a and b, on one GPU.
 * enter() keeps what a refusal says (until: when to look again) where a test can read it. */
struct two_slices {
        struct slice_shm shm;
        unsigned a, b;
        uint32_t wake;
        uint64_t until;
};

static int two_slices_setup(void **state) {
        static struct two_slices s;
        s = (struct two_slices){};
        fresh_sched(&s.shm);
        s.a = add(&s.shm, "a", SLICE_POLICY_EQUAL_SHARE, 0);
        s.b = add(&s.shm, "b", SLICE_POLICY_EQUAL_SHARE, 0);
        *state = &s;
        return 0;
}

static int enter(struct two_slices *s, unsigned slice, uint64_t now, struct slice_sched_ticket *ret_t) {
        return slice_sched_enter(&s->shm, slice, now, ret_t, &s->wake, &s->until);
}

/* The usual opening: a takes the GPU at now, b asks at the same moment and is told to wait. */
static void a_holds_b_waits(struct two_slices *s, uint64_t now, struct slice_sched_ticket *ret_t,
                            struct slice_sched_ticket *ret_tb) {
        assert_int_equal(enter(s, s->a, now, ret_t), 0);
        assert_int_equal(enter(s, s->b, now, ret_tb), -EAGAIN);
}

/* A lone equal-share slice keeps its turn without draining; a waiting slice ends that. */
static void test_sched_extend(void **state) {
        struct two_slices *s = *state;
        struct slice_shm *shm = &s->shm;
        uint64_t now = 1000 * MS;
        struct slice_sched_ticket t, tb;
        assert_int_equal(enter(s, s->a, now, &t), 0);
        now = t.deadline_ns + 1;
        assert_int_equal(slice_sched_extend(shm, s->a, &t, now), 1);
        assert_int_equal(t.deadline_ns, now + shm->sched.quantum_ns);
        assert_int_equal(enter(s, s->b, now, &tb), -EAGAIN);
        assert_int_equal(s->until, t.deadline_ns);
        now = t.deadline_ns + 1;
        assert_int_equal(slice_sched_extend(shm, s->a, &t, now), 0);
        slice_sched_leave(shm, s->a, t.turn, now, now, false);
        assert_int_equal(enter(s, s->b, now, &tb), 0); /* granted at close */
}

/* The holder of a turn dies: the others take the GPU back once its deadline has passed. */
static void test_sched_dead_holder(void **state) {
        struct two_slices *s = *state;
        struct slice_shm *shm = &s->shm;
        pid_t dead = fork();
        if (dead == 0)
                _exit(0);
        waitpid(dead, NULL, 0);
        uint64_t now = 1000 * MS;
        struct slice_sched_ticket t, tb;
        assert_int_equal(enter(s, s->a, now, &t), 0);
        shm->sched.parts[0].pid = dead; /* as if a had been that process */
        shm->sched.blocked = 1;         /* ...and died waiting for the GPU */
        assert_int_equal(enter(s, s->b, t.deadline_ns - 1, &tb), -EAGAIN);
        now = t.deadline_ns + 1;
        assert_int_equal(enter(s, s->b, now, &tb), 0);
        assert_int_equal(shm->slices[s->a].forced_turn, t.turn);
        /* Had a lived on, its late report is charged to it as an overrun. */
        int64_t before = shm->slices[s->a].deficit_ns;
        slice_sched_leave(shm, s->a, t.turn, now + 5 * MS, now + 5 * MS, false);
        assert_int_equal(shm->slices[s->a].deficit_ns, before - (int64_t) (5 * MS));
}

/* The holder of an 8 ms turn leaves to launch on: it is credited the round its close deals out,
 * like the slice that waited, not dropped as no longer asking. */
static void test_sched_overrun_keeps_credit(void **state) {
        struct two_slices *s = *state;
        struct slice_shm *shm = &s->shm;
        int64_t q = (int64_t) shm->sched.quantum_ns;
        uint64_t now = 1000 * MS;
        struct slice_sched_ticket t, tb;
        shm->slices[s->b].deficit_ns = -q / 2; /* no credit left: a's close deals out a round */
        a_holds_b_waits(s, now, &t, &tb);
        now += 8 * MS;
        slice_sched_leave(shm, s->a, t.turn, now, now, true);
        assert_int_equal(shm->slices[s->a].deficit_ns, q - (int64_t) (8 * MS) + q);
        assert_int_equal(shm->slices[s->b].deficit_ns, q / 2);
        assert_int_equal(atomic_load(&shm->sched.owner), s->b + 1);
}

/* A waiter that cannot look again in time (on a loaded host, 5 to 10 ms late for a 0.5 ms wait)
 * still waits: the holder gets no free extension. */
static void test_sched_waiter_starved(void **state) {
        struct two_slices *s = *state;
        struct slice_shm *shm = &s->shm;
        uint64_t q = shm->sched.quantum_ns, now = 1000 * MS;
        struct slice_sched_ticket t, tb;
        a_holds_b_waits(s, now, &t, &tb);
        now += 10 * q; /* b never looked again */
        assert_true(slice_sched_contended(shm, s->a, now));
        assert_int_equal(slice_sched_extend(shm, s->a, &t, now), 0);
}

/* Granted, and its waiter does not come: the GPU goes to the others after half a quantum, the
 * absent slice keeps its credit, and counts as waiting again only when it asks again. */
static void test_sched_absent_grantee(void **state) {
        struct two_slices *s = *state;
        struct slice_shm *shm = &s->shm;
        int64_t q = (int64_t) shm->sched.quantum_ns;
        uint64_t now = 1000 * MS;
        struct slice_sched_ticket t, tb;
        a_holds_b_waits(s, now, &t, &tb);
        now += 2 * MS;
        slice_sched_leave(shm, s->a, t.turn, now, now, true);
        assert_int_equal(atomic_load(&shm->sched.owner), s->b + 1); /* b never comes */
        now += (uint64_t) q / 2 + 1;
        assert_int_equal(enter(s, s->a, now, &t), 0);
        assert_int_equal(shm->slices[s->b].deficit_ns, q);
        now = t.deadline_ns + 1;
        assert_true(slice_sched_contended(shm, s->a, now)); /* b may still come... */
        now += 3 * (uint64_t) q + 1;
        assert_int_equal(slice_sched_extend(shm, s->a, &t, now), 1); /* ...but it asked no more */
        assert_int_equal(enter(s, s->b, now, &tb), -EAGAIN);
        now = t.deadline_ns + 1;
        assert_int_equal(slice_sched_extend(shm, s->a, &t, now), 0);
        slice_sched_leave(shm, s->a, t.turn, now, now, true);
        assert_int_equal(atomic_load(&shm->sched.owner), s->b + 1); /* its credit kept it first */
}

/* A waiter that died waiting (its want runs a second ahead) is granted turns it never takes: its
 * want must decay from the first such grant (WANT_QUANTA), or the live slice loses every other
 * turn for good. */
static void test_sched_dead_waiter(void **state) {
        struct two_slices *s = *state;
        struct slice_shm *shm = &s->shm;
        uint64_t q = shm->sched.quantum_ns, now = 1000 * MS, end = now + 100 * q;
        uint32_t seen = 0;
        struct slice_sched_ticket t, tb;
        a_holds_b_waits(s, now, &t, &tb); /* and b dies */
        unsigned grants_b = 0, turns_a = 0;
        while (now < end) {
                if (enter(s, s->a, now, &t) == -EAGAIN) {
                        uint32_t turn = atomic_load(&shm->sched.turn);
                        if (atomic_load(&shm->sched.owner) == s->b + 1 && turn != seen) {
                                grants_b++;
                                seen = turn;
                        }
                        now += q / 4;
                        continue;
                }
                turns_a++;
                do
                        now = t.deadline_ns + 1;
                while (now < end && slice_sched_extend(shm, s->a, &t, now) == 1);
                slice_sched_leave(shm, s->a, t.turn, now, now, true);
        }
        assert_true(turns_a > 0);
        assert_in_range(grants_b, 1, 3); /* the old code: 65 of 100 quanta */
}

/* A turn closed under its holder (not back from the CPU within the grace): the holder pays what
 * ran after the close, and the next turn, whose first work queued behind that, does not. */
static void test_sched_overrun_charged_once(void **state) {
        struct two_slices *s = *state;
        struct slice_shm *shm = &s->shm;
        int64_t q = (int64_t) shm->sched.quantum_ns;
        uint64_t now = 1000 * MS;
        struct slice_sched_ticket t, tb;
        assert_int_equal(enter(s, s->a, now, &t), 0);
        uint64_t closed = t.deadline_ns + 2 * (uint64_t) q; /* the grace */
        assert_int_equal(enter(s, s->b, closed, &tb), 0);
        assert_int_equal(shm->slices[s->a].deficit_ns, q - 3 * q);
        slice_sched_leave(shm, s->a, t.turn, closed + 5 * MS, closed + 5 * MS, true);
        assert_int_equal(shm->slices[s->a].deficit_ns, q - 3 * q - (int64_t) (5 * MS));
        slice_sched_leave(shm, s->b, tb.turn, closed + 7 * MS, closed + 7 * MS, false); /* no round for b */
        assert_int_equal(shm->slices[s->b].deficit_ns, q - (int64_t) (2 * MS));
}

/* The quota sizes `slice create --memory` and host.yaml's `memory:` take (one parser for both). */
static void test_parse_memory(void **state) {
        (void) state;
        static const struct {
                const char *in;
                int r;
                uint64_t v;
        } cases[] = {
                { "4G", 0, 4ULL << 30 },   { "512M", 0, 512ULL << 20 }, { "1.5G", 0, 3ULL << 29 },
                { "4GiB", 0, 4ULL << 30 }, { "4gb", 0, 4ULL << 30 },    { "64K", 0, 64 << 10 },
                { "1T", 0, 1ULL << 40 },   { "4096", 0, 4096 },         { "0", 0, 0 },
                { "lots", -EINVAL, 0 },    { "4X", -EINVAL, 0 },        { "4Gx", -EINVAL, 0 },
                { "-1G", -EINVAL, 0 },     { "", -EINVAL, 0 },          { "99999999T", -ERANGE, 0 },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                uint64_t v = 12345;
                int r = vgpu_slice_parse_memory(cases[i].in, &v);
                if (r != cases[i].r || (r == 0 && v != cases[i].v))
                        fail_msg("'%s': got %d/%llu, want %d/%llu", cases[i].in, r, (unsigned long long) v,
                                 cases[i].r, (unsigned long long) cases[i].v);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_region),
                cmocka_unit_test(test_parse_memory),
                cmocka_unit_test(test_charge),
                cmocka_unit_test(test_charge_race),
                cmocka_unit_test(test_reclaim),
                cmocka_unit_test(test_pid_reuse),
                cmocka_unit_test(test_sched_equal),
                cmocka_unit_test(test_sched_fixed),
                cmocka_unit_test_setup(test_sched_extend, two_slices_setup),
                cmocka_unit_test_setup(test_sched_dead_holder, two_slices_setup),
                cmocka_unit_test_setup(test_sched_overrun_keeps_credit, two_slices_setup),
                cmocka_unit_test_setup(test_sched_waiter_starved, two_slices_setup),
                cmocka_unit_test_setup(test_sched_absent_grantee, two_slices_setup),
                cmocka_unit_test_setup(test_sched_dead_waiter, two_slices_setup),
                cmocka_unit_test_setup(test_sched_overrun_charged_once, two_slices_setup),
                cmocka_unit_test(test_sched_file),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* parallel.c — a minimal parallel for-loop over pthreads (see parallel.h). */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <unistd.h>

#include "parallel.h"

#define MAX_THREADS 8

struct pool {
        size_t n;
        atomic_size_t next;
        atomic_int r;
        int (*fn)(size_t, void *);
        void *userdata;
};

static void *worker(void *arg) {
        struct pool *p = arg;
        while (atomic_load(&p->r) >= 0) {
                size_t i = atomic_fetch_add(&p->next, 1);
                if (i >= p->n)
                        break;
                int r = p->fn(i, p->userdata);
                if (r < 0) {
                        int expected = 0;
                        atomic_compare_exchange_strong(&p->r, &expected, r);
                }
        }
        return NULL;
}

/*
 * threads cut to what the descriptor limit leaves room for (one at least; a job whose open fails
 * with EMFILE fails the whole call), and then, for more than one, the shared table grown now, by
 * this thread alone (parallel.h says why). The room is RLIMIT_NOFILE less the lowest free
 * descriptor (those below it are taken); an unlimited or unknown limit leaves all the room. The
 * table grows to hold the duplicate made here, and keeps its size when it is closed.
 */
static size_t fit_fds(size_t threads, size_t fds_per_thread) {
        int low = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (low < 0)
                return 1; /* EMFILE: none left */
        struct rlimit rl;
        bool limited = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
        if (limited) {
                size_t room = rl.rlim_cur > (rlim_t) low ? (size_t) (rl.rlim_cur - (rlim_t) low) : 0;
                size_t fit = room / fds_per_thread;
                if (threads > fit)
                        threads = fit > 0 ? fit : 1;
        }
        if (threads > 1) {
                size_t want = (size_t) low + threads * fds_per_thread;
                if (limited && want >= rl.rlim_cur)
                        want = rl.rlim_cur > 0 ? (size_t) rl.rlim_cur - 1 : 0;
                if (want > INT_MAX)
                        want = INT_MAX;
                int high = fcntl(low, F_DUPFD_CLOEXEC, (int) want);
                if (high >= 0)
                        close(high);
        }
        close(low);
        return threads;
}

int parallel_for(size_t n, size_t min_per_thread, int (*fn)(size_t i, void *userdata), void *userdata) {
        return parallel_for_fds(n, min_per_thread, 0, fn, userdata);
}

int parallel_for_fds(size_t n, size_t min_per_thread, size_t fds_per_thread,
                     int (*fn)(size_t i, void *userdata), void *userdata) {
        struct pool p = { .n = n, .fn = fn, .userdata = userdata };
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        size_t threads = min_per_thread ? n / min_per_thread : n;
        if (cpus < 1)
                cpus = 1;
        if (threads > (size_t) cpus)
                threads = (size_t) cpus;
        if (threads > MAX_THREADS)
                threads = MAX_THREADS;

        if (fds_per_thread > 0 && threads > 1)
                threads = fit_fds(threads, fds_per_thread);

        pthread_t tid[MAX_THREADS];
        size_t started = 0;
        for (; started + 1 < threads; started++)
                if (pthread_create(&tid[started], NULL, worker, &p) != 0)
                        break; /* fewer threads, same result */
        worker(&p);
        for (size_t i = 0; i < started; i++)
                pthread_join(tid[i], NULL);
        return atomic_load(&p.r);
}

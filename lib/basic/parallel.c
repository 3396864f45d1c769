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

/* The room RLIMIT_NOFILE leaves above the lowest free descriptor, low (SIZE_MAX: no limit), or
 * 0 with low -1 when none is free. The caller closes low. */
static size_t fd_room(int *low) {
        *low = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (*low < 0)
                return 0; /* EMFILE: none left */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
                return SIZE_MAX;
        return rl.rlim_cur > (rlim_t) *low ? (size_t) (rl.rlim_cur - (rlim_t) *low) : 0;
}

/* The table grown to hold low + n (within the room): a duplicate made that high, closed again;
 * the table keeps its size. */
static void grow_to(int low, size_t n, size_t room) {
        if (n >= room)
                n = room > 0 ? room - 1 : 0;
        size_t want = (size_t) low + n;
        if (want > INT_MAX)
                want = INT_MAX;
        int high = fcntl(low, F_DUPFD_CLOEXEC, (int) want);
        if (high >= 0)
                close(high);
}

void fd_table_reserve(size_t n) {
        int low;
        size_t room = fd_room(&low);
        if (low < 0)
                return;
        grow_to(low, n, room);
        close(low);
}

/*
 * threads cut to what the descriptor limit leaves room for (one at least; a job whose open fails
 * with EMFILE fails the whole call), and then, for more than one, the shared table grown now, by
 * this thread alone (parallel.h says why). The room is RLIMIT_NOFILE less the lowest free
 * descriptor (those below it are taken); an unlimited or unknown limit leaves all the room.
 */
static size_t fit_fds(size_t threads, size_t fds_per_thread) {
        int low;
        size_t room = fd_room(&low);
        if (low < 0)
                return 1;
        size_t fit = room / fds_per_thread;
        if (threads > fit)
                threads = fit > 0 ? fit : 1;
        if (threads > 1)
                grow_to(low, threads * fds_per_thread, room);
        close(low);
        return threads;
}

size_t parallel_max_threads(void) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        if (cpus < 1)
                return 1;
        return (size_t) cpus < MAX_THREADS ? (size_t) cpus : MAX_THREADS;
}

int parallel_for(size_t n, size_t min_per_thread, int (*fn)(size_t i, void *userdata), void *userdata) {
        return parallel_for_fds(n, min_per_thread, 0, fn, userdata);
}

int parallel_for_fds(size_t n, size_t min_per_thread, size_t fds_per_thread,
                     int (*fn)(size_t i, void *userdata), void *userdata) {
        struct pool p = { .n = n, .fn = fn, .userdata = userdata };
        size_t threads = min_per_thread ? n / min_per_thread : n;
        if (threads > parallel_max_threads())
                threads = parallel_max_threads();

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

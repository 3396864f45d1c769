/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* parallel.c — a minimal parallel for-loop over pthreads (see parallel.h). */
#include <pthread.h>
#include <stdatomic.h>
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

int parallel_for(size_t n, size_t min_per_thread, int (*fn)(size_t i, void *userdata), void *userdata) {
        struct pool p = { .n = n, .fn = fn, .userdata = userdata };
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        size_t threads = min_per_thread ? n / min_per_thread : n;
        if (cpus < 1)
                cpus = 1;
        if (threads > (size_t) cpus)
                threads = (size_t) cpus;
        if (threads > MAX_THREADS)
                threads = MAX_THREADS;

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

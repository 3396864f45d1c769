/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fake-queue.c — the fake driver's asynchronous execution, per process: one FIFO of work (every
 * stream of the process shares it, which keeps each stream's order) run by one worker thread.
 * Launches return at once, like on a GPU; events are stamped when the worker reaches them; the
 * queue holds QUEUE_MAX items and a launch into a full queue blocks, like a full push buffer.
 * Also the statistics a test reads back: GPU time of this process's kernels (in total and inside
 * a window the test sets) and memsets (the shim's scrubs, since tests write with memcpy).
 * $FAKE_CUDA_WAKE_DELAY_NS: a thread that had to wait in a synchronize returns this long after
 * the work completed, like one woken late on a loaded host (0 or unset: at once).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake-gpu.h"

#define QUEUE_MAX 1024

enum op_kind { OP_KERNEL, OP_EVENT, OP_MEMSET, OP_POOLFREE };

struct op {
        enum op_kind kind;
        uint64_t ns;
        CUevent ev;
        uint64_t gen;
        CUdeviceptr ptr;
        unsigned char val;
        size_t n;
        struct CUmemPoolHandle_st *pool;
};

static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qcond = PTHREAD_COND_INITIALIZER;
static struct op queue[QUEUE_MAX];
static unsigned qhead, qcount;
static uint64_t submitted, completed;
static bool worker_started;

static _Atomic uint64_t busy_ns, window_busy_ns, window_start, window_end, memset_count, memset_bytes;

static void execute(const struct op *o) {
        switch (o->kind) {
        case OP_KERNEL: {
                uint64_t s, e;
                fake_gpu_run(o->ns, &s, &e);
                atomic_fetch_add(&busy_ns, e - s);
                uint64_t w0 = atomic_load(&window_start), w1 = atomic_load(&window_end);
                uint64_t a = s > w0 ? s : w0, b = e < w1 ? e : w1;
                if (b > a)
                        atomic_fetch_add(&window_busy_ns, b - a);
                break;
        }
        case OP_EVENT:
                atomic_store(&o->ev->stamp, fake_now_ns());
                atomic_store(&o->ev->done, o->gen);
                break;
        case OP_MEMSET: {
                void *h = fake_gpu_host(o->ptr, o->n);
                if (h)
                        memset(h, o->val, o->n);
                fake_stats_memset(o->n);
                break;
        }
        case OP_POOLFREE:
                fake_pool_release(o->pool, o->ptr);
                break;
        }
}

static void *worker(void *arg) {
        (void) arg;
        pthread_mutex_lock(&qlock);
        for (;;) {
                while (qcount == 0)
                        pthread_cond_wait(&qcond, &qlock);
                struct op o = queue[qhead];
                pthread_mutex_unlock(&qlock);
                execute(&o);
                pthread_mutex_lock(&qlock);
                qhead = (qhead + 1) % QUEUE_MAX;
                qcount--;
                completed++;
                pthread_cond_broadcast(&qcond);
        }
        return NULL;
}

static void submit(const struct op *o) {
        pthread_mutex_lock(&qlock);
        if (!worker_started) {
                pthread_t t;
                pthread_attr_t a;
                pthread_attr_init(&a);
                pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
                pthread_create(&t, &a, worker, NULL);
                pthread_attr_destroy(&a);
                worker_started = true;
        }
        while (qcount == QUEUE_MAX)
                pthread_cond_wait(&qcond, &qlock);
        queue[(qhead + qcount) % QUEUE_MAX] = *o;
        qcount++;
        submitted++;
        pthread_cond_broadcast(&qcond);
        pthread_mutex_unlock(&qlock);
}

void fake_queue_kernel(uint64_t ns) {
        submit(&(struct op){ .kind = OP_KERNEL, .ns = ns });
}

void fake_queue_event(CUevent ev) {
        uint64_t gen = atomic_fetch_add(&ev->recorded, 1) + 1;
        submit(&(struct op){ .kind = OP_EVENT, .ev = ev, .gen = gen });
}

void fake_queue_memset(CUdeviceptr p, unsigned char v, size_t n) {
        submit(&(struct op){ .kind = OP_MEMSET, .ptr = p, .val = v, .n = n });
}

void fake_queue_pool_free(struct CUmemPoolHandle_st *pool, CUdeviceptr p) {
        submit(&(struct op){ .kind = OP_POOLFREE, .pool = pool, .ptr = p });
}

static void wake_late(bool waited) {
        static _Atomic long delay = -1;
        long d = atomic_load(&delay);
        if (d < 0) {
                const char *e = getenv("FAKE_CUDA_WAKE_DELAY_NS");
                d = e ? strtol(e, NULL, 0) : 0;
                atomic_store(&delay, d);
        }
        if (waited && d > 0)
                nanosleep(&(struct timespec){ .tv_sec = d / 1000000000, .tv_nsec = d % 1000000000 }, NULL);
}

void fake_queue_sync(void) {
        pthread_mutex_lock(&qlock);
        uint64_t target = submitted;
        bool waited = completed < target;
        while (completed < target)
                pthread_cond_wait(&qcond, &qlock);
        pthread_mutex_unlock(&qlock);
        wake_late(waited);
}

void fake_event_sync(CUevent ev) {
        uint64_t gen = atomic_load(&ev->recorded);
        pthread_mutex_lock(&qlock);
        bool waited = atomic_load(&ev->done) < gen;
        while (atomic_load(&ev->done) < gen)
                pthread_cond_wait(&qcond, &qlock);
        pthread_mutex_unlock(&qlock);
        wake_late(waited);
}

void fake_stats_memset(uint64_t n) {
        atomic_fetch_add(&memset_count, 1);
        atomic_fetch_add(&memset_bytes, n);
}

/* ---- statistics for tests, exported ---- */

__attribute__((visibility("default"))) void fakecu_set_window(uint64_t start_ns, uint64_t end_ns) {
        atomic_store(&window_start, start_ns);
        atomic_store(&window_end, end_ns);
        atomic_store(&window_busy_ns, 0);
}

__attribute__((visibility("default"))) uint64_t fakecu_window_busy_ns(void) {
        return atomic_load(&window_busy_ns);
}

__attribute__((visibility("default"))) uint64_t fakecu_busy_ns(void) {
        return atomic_load(&busy_ns);
}

__attribute__((visibility("default"))) void fakecu_memset_stats(uint64_t *count, uint64_t *bytes) {
        *count = atomic_load(&memset_count);
        *bytes = atomic_load(&memset_bytes);
}

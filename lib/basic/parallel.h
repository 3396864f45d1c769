/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * parallel.h — run fn(i) for i in [0, n) on up to one thread per CPU.
 *
 * Reading a large host is thousands of small sysfs reads whose cost is the kernel's own work
 * (path walk, open, read): spread over the cores it shrinks, which nothing else can do. Small
 * jobs stay on the calling thread: a thread costs more than a few hundred reads.
 */
#pragma once

#include <stddef.h>

/*
 * Items are handed out one at a time from a shared counter. The first negative return stops
 * the handing out and is returned (items already running finish). fn must be thread-safe for
 * distinct i. Threads are used only when n >= 2 * min_per_thread.
 */
int parallel_for(size_t n, size_t min_per_thread, int (*fn)(size_t i, void *userdata), void *userdata);

/*
 * The same for jobs that each hold up to fds_per_thread descriptors open at once: no more
 * threads than RLIMIT_NOFILE leaves room for (one at least), as a job that runs out of
 * descriptors fails. `types` on a host with 8 cores and the usual soft limit of 1024 ran 8
 * groups at once, each with up to 32 type directories and a batch of 128 files open.
 *
 * The process's descriptor table is grown for all the threads before they start. The kernel
 * grows a table that threads share only after an RCU grace period (expand_fdtable():
 * synchronize_rcu()), and every open meanwhile waits: the two threads of `types` on
 * bench/inventory.sh's host slept through several growths, a sixth of its wall time. Grown by
 * one thread alone, the table costs no wait.
 */
int parallel_for_fds(size_t n, size_t min_per_thread, size_t fds_per_thread,
                     int (*fn)(size_t i, void *userdata), void *userdata);

/*
 * Grow the descriptor table now to hold n more descriptors (within RLIMIT_NOFILE), before
 * threads are started that will open them at once: a table grown while threads share it costs
 * every open an RCU grace period (see above). The table keeps its size; nothing stays open.
 */
void fd_table_reserve(size_t n);

/* The most threads one parallel_for() runs: one per CPU, within a fixed cap. */
size_t parallel_max_threads(void);

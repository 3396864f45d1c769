/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-basic.c — lib/basic: sysfs.c, sysfs-batch.c and root.c, one-read attributes and their
 * batch on both paths, links, the root prefix; parallel.c, no more threads than descriptors allow
 * and the descriptor table grown before they start; lock.c, the host lock: taken and let go, a
 * waiter that gives up names the lock and the holder's PID, a PID left by a holder that died is
 * not named, and a lock that cannot be made says where. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-util.h"

#include "basic/lock.h"
#include "basic/macro.h"
#include "basic/parallel.h"
#include "basic/root.h"
#include "basic/sysfs-batch.h"
#include "basic/sysfs.h"

#if HAVE_LIBURING
#include <liburing.h>
#endif

static char tmpdir[64];

static void write_file(const char *name, const char *content) {
        char p[256];
        snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
        FILE *f = fopen(p, "w");
        assert_non_null(f);
        fputs(content, f);
        fclose(f);
}

static int setup(void **state) {
        (void) state;
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/vgpu-test-basic.XXXXXX");
        assert_non_null(mkdtemp(tmpdir));
        write_file("vendor", "0x10de\n");
        write_file("numa_node", "-1\n");
        write_file("bad", "12abc\n");
        write_file("empty", "");
        char p[256];
        snprintf(p, sizeof(p), "%s/driver", tmpdir);
        assert_int_equal(symlink("../../../bus/pci/drivers/nvidia", p), 0);
        return 0;
}

static int teardown(void **state) {
        (void) state;
        rm_rf(tmpdir);
        return 0;
}

static void test_read(void **state) {
        (void) state;
        int fd = open(tmpdir, O_RDONLY | O_DIRECTORY);
        char buf[64];
        assert_int_equal(sysfs_read_at(fd, "vendor", buf, sizeof(buf)), 6);
        assert_string_equal(buf, "0x10de");
        assert_int_equal(sysfs_read_at(fd, "missing", buf, sizeof(buf)), -ENOENT);
        assert_int_equal(sysfs_read_at(fd, "empty", buf, sizeof(buf)), 0);
        /* a short buffer truncates instead of overflowing */
        assert_int_equal(sysfs_read_at(fd, "vendor", buf, 4), 3);
        assert_string_equal(buf, "0x1");
        close(fd);
}

static void test_numbers(void **state) {
        (void) state;
        int fd = open(tmpdir, O_RDONLY | O_DIRECTORY);
        uint64_t v;
        int i;
        assert_int_equal(sysfs_read_u64_at(fd, "vendor", 16, &v), 0);
        assert_int_equal(v, 0x10de);
        assert_int_equal(sysfs_read_u64_at(fd, "numa_node", 10, &v), -EINVAL);
        assert_int_equal(sysfs_read_int_at(fd, "numa_node", &i), 0);
        assert_int_equal(i, -1);
        assert_int_equal(sysfs_read_u64_at(fd, "bad", 10, &v), -EINVAL);
        assert_int_equal(sysfs_read_u64_at(fd, "empty", 10, &v), -EINVAL);
        close(fd);
}

static void test_links(void **state) {
        (void) state;
        int fd = open(tmpdir, O_RDONLY | O_DIRECTORY);
        char buf[64];
        assert_int_equal(sysfs_link_basename_at(fd, "driver", buf, sizeof(buf)), 6);
        assert_string_equal(buf, "nvidia");
        assert_true(sysfs_exists_at(fd, "driver"));
        assert_false(sysfs_exists_at(fd, "nope"));
        assert_int_equal(sysfs_link_basename_at(fd, "vendor", buf, sizeof(buf)), -EINVAL);
        close(fd);
}

/* Names from users that become paths (sysfs.h): one entry, or entries below a device. */
static void test_names(void **state) {
        (void) state;
        const char *const names[] = { "0000:3b:00.0", "mtty", "nvidia-232", "i915-GVTg_V5_4", "a.b" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                assert_true(sysfs_name_ok(names[i]));
        const char *const bad_names[] = { "", ".", "..", "a/b", "../x", "a b", "a\nb", "x\x7f" };
        for (size_t i = 0; i < ELEMENTSOF(bad_names); i++)
                assert_false(sysfs_name_ok(bad_names[i]));
        assert_false(sysfs_name_ok(NULL));
        const char *const paths[] = { "nvidia/vgpu_params", "frame_rate", "a/b/c", "..x/y" };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++)
                assert_true(sysfs_rel_path_ok(paths[i]));
        const char *const bad_paths[] = {
                "",     "/etc/passwd", "a/../b", "..",  "../../proc/sys/kernel/core_pattern",
                "a//b", "a/",          "./a",    "a/.", "a\tb"
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_paths); i++)
                assert_false(sysfs_rel_path_ok(bad_paths[i]));
}

static void test_root(void **state) {
        (void) state;
        char buf[256];
        unsetenv("VGPU_ROOT");
        assert_string_equal(root_prefix(), "");
        assert_int_equal(root_path(buf, sizeof(buf), "/sys/bus"), 0);
        assert_string_equal(buf, "/sys/bus");
        setenv("VGPU_ROOT", "/", 1);
        assert_int_equal(root_path(buf, sizeof(buf), "/sys/bus"), 0);
        assert_string_equal(buf, "/sys/bus");
        setenv("VGPU_ROOT", "/srv/host//", 1);
        assert_int_equal(root_path(buf, sizeof(buf), "/proc/cmdline"), 0);
        assert_string_equal(buf, "/srv/host/proc/cmdline");
        assert_int_equal(root_path(buf, sizeof(buf), "relative"), -EINVAL);
        assert_int_equal(root_path(buf, 8, "/proc/cmdline"), -ENAMETOOLONG);
        setenv("VGPU_ROOT", tmpdir, 1);
        assert_int_equal(root_read("/vendor", buf, sizeof(buf)), 6);
        assert_string_equal(buf, "0x10de");
        unsetenv("VGPU_ROOT");
}

static size_t count_fds(void) {
        size_t n = 0;
        DIR *d = opendir("/proc/self/fd");
        assert_non_null(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

#define N_BATCH 300 /* more than one io_uring round (128) */

/* The batch on both paths gives what sysfs_read_at() gives, entry by entry: values, a missing
 * file, an empty one, a directory, a FIFO, a short buffer, a skipped entry; and leaks nothing. */
static void test_batch(void **state) {
        (void) state;
        char dir[256];
        snprintf(dir, sizeof(dir), "%s/batch", tmpdir);
        assert_int_equal(mkdir(dir, 0755), 0);
        int dfd = open(dir, O_RDONLY | O_DIRECTORY);
        assert_true(dfd >= 0);
        static char names[N_BATCH][32];
        for (int i = 0; i < N_BATCH; i++) {
                snprintf(names[i], sizeof(names[i]), "attr%d", i);
                if (i % 7 == 3)
                        continue; /* missing */
                if (i == 9)
                        assert_int_equal(mkdirat(dfd, names[i], 0755), 0);
                else if (i == 11)
                        assert_int_equal(mkfifoat(dfd, names[i], 0644), 0);
                else {
                        int fd = openat(dfd, names[i], O_WRONLY | O_CREAT, 0644);
                        assert_true(fd >= 0);
                        if (i != 12) /* 12: empty */
                                assert_true(dprintf(fd, "value %d \n\n", i) > 0);
                        close(fd);
                }
        }
        static char want[N_BATCH][64], got[2][N_BATCH][64];
        int want_r[N_BATCH];
        struct sysfs_batch_entry e[2][N_BATCH];
        for (int i = 0; i < N_BATCH; i++) {
                size_t size = i == 20 ? 4 : sizeof(want[i]); /* 20: a short buffer */
                want_r[i] = i == 30 ? -ENOENT : sysfs_read_at(dfd, names[i], want[i], size);
                for (int k = 0; k < 2; k++)
                        e[k][i] = (struct sysfs_batch_entry){ dfd, i == 30 ? NULL : names[i], got[k][i], size,
                                                              1 };
        }
        size_t fds = count_fds();
        assert_int_equal(sysfs_batch_read(e[0], N_BATCH), 0);
        bool used = sysfs_batch_used_io_uring();
        setenv("VGPU_IO_URING", "0", 1);
        assert_int_equal(sysfs_batch_read(e[1], N_BATCH), 0);
        assert_false(sysfs_batch_used_io_uring());
        unsetenv("VGPU_IO_URING");
        assert_int_equal(count_fds(), fds);
        for (int k = 0; k < 2; k++)
                for (int i = 0; i < N_BATCH; i++) {
                        assert_int_equal(e[k][i].result, want_r[i]);
                        if (want_r[i] >= 0)
                                assert_string_equal(got[k][i], want[i]);
                        /* full: only the short buffer was filled ("val" of "value 20"), on both paths */
                        assert_int_equal(e[k][i].full, i == 20);
                }
        assert_string_equal(got[0][20], "val");
        assert_int_equal(e[0][3].result, -ENOENT);
        assert_int_equal(e[0][9].result, -EISDIR);
        assert_int_equal(e[0][11].result, 0);
        assert_int_equal(e[0][12].result, 0);
        assert_string_equal(got[0][13], "value 13");

#if HAVE_LIBURING
        /* where this kernel lets us have a ring, the first batch must have used it */
        struct io_uring ring;
        if (io_uring_queue_init(8, &ring, 0) == 0) {
                io_uring_queue_exit(&ring);
                assert_true(used);
        } else
                print_message("io_uring denied here: only the plain path was tested\n");
#else
        (void) used;
        print_message("built without liburing: only the plain path was tested\n");
#endif
        close(dfd);
}

static atomic_int jobs_running, jobs_at_once;

/* A job that lasts long enough for the others to start meanwhile; notes how many ran at once. */
static int note_overlap(size_t i, void *userdata) {
        (void) i;
        (void) userdata;
        int now = atomic_fetch_add(&jobs_running, 1) + 1;
        for (int seen = atomic_load(&jobs_at_once); now > seen;)
                if (atomic_compare_exchange_weak(&jobs_at_once, &seen, now))
                        break;
        usleep(20000);
        atomic_fetch_sub(&jobs_running, 1);
        return 0;
}

/* The most jobs parallel_for_fds() ran at once with room for `room` more descriptors. */
static int jobs_at_once_with_room(int room, size_t fds_per_thread) {
        struct rlimit saved, rl;
        assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
        int low = open("/", O_PATH | O_CLOEXEC);
        assert_true(low >= 0);
        close(low);
        rl = saved;
        rl.rlim_cur = (rlim_t) (low + room);
        assert_true(rl.rlim_cur <= saved.rlim_max);
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
        atomic_store(&jobs_at_once, 0);
        assert_int_equal(parallel_for_fds(8, 1, fds_per_thread, note_overlap, NULL), 0);
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
        return atomic_load(&jobs_at_once);
}

/* parallel_for_fds() runs no more threads than RLIMIT_NOFILE leaves room for: with room for one
 * job's descriptors, one at a time (every job still runs); with room for two, two at most. */
static void test_parallel_fds(void **state) {
        (void) state;
        assert_int_equal(jobs_at_once_with_room(150, 100), 1);
        assert_in_range(jobs_at_once_with_room(250, 100), 1, 2);
        /* without a descriptor count, as many as parallel_for() runs: all 8 when the CPUs allow */
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        atomic_store(&jobs_at_once, 0);
        assert_int_equal(parallel_for(8, 1, note_overlap, NULL), 0);
        if (cpus >= 2)
                assert_true(atomic_load(&jobs_at_once) >= 2);
}

/* The size of this process's descriptor table (FDSize in /proc/self/status). */
static long fd_table_size(void) {
        FILE *f = fopen("/proc/self/status", "re");
        assert_non_null(f);
        char line[256];
        long size = -1;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "FDSize: %ld", &size) == 1)
                        break;
        fclose(f);
        assert_true(size > 0);
        return size;
}

static atomic_long smallest_table = LONG_MAX;

static int note_table(size_t i, void *userdata) {
        (void) i;
        (void) userdata;
        long size = fd_table_size();
        for (long seen = atomic_load(&smallest_table); size < seen;)
                if (atomic_compare_exchange_weak(&smallest_table, &seen, size))
                        break;
        return 0;
}

/* With threads, parallel_for_fds() grows the descriptor table for all of them before any job
 * runs (threads sharing a table wait an RCU grace period for each growth), and leaves no
 * descriptor behind. */
static void test_parallel_fd_table(void **state) {
        (void) state;
        if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
                print_message("one CPU: no threads, no table grown\n");
                return;
        }
        struct rlimit saved, rl;
        assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
        rl = saved;
        if (rl.rlim_cur < 4096 && rl.rlim_max >= 4096)
                rl.rlim_cur = 4096;
        if (rl.rlim_cur < 4096) {
                print_message("RLIMIT_NOFILE below 4096: the table's growth not checked\n");
                return;
        }
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
        long before = fd_table_size();
        assert_true(before < 1200); /* the earlier cases open a few hundred at most */
        size_t fds = count_fds();
        assert_int_equal(parallel_for_fds(4, 1, 600, note_table, NULL), 0);
        assert_true(atomic_load(&smallest_table) >= 1200); /* two threads at least, 600 each */
        assert_int_equal(count_fds(), fds);
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
}

/* ---- lock.c: each case on a scratch root of its own */
static char root[] = "/tmp/vgpu-test-lock.XXXXXX";

static int lock_setup(void **state) {
        (void) state;
        strcpy(root, "/tmp/vgpu-test-lock.XXXXXX");
        assert_non_null(mkdtemp(root));
        setenv("VGPU_ROOT", root, 1);
        return 0;
}

static int lock_teardown(void **state) {
        (void) state;
        rm_rf(root);
        return 0;
}

static void test_take_release(void **state) {
        (void) state;
        struct vgpu_error err = {};
        int fd = host_lock_take(&err);
        assert_true(fd >= 0);
        host_lock_release(fd);
        /* again, now that it is free; and through _cleanup_close_ */
        {
                _cleanup_close_ int again = host_lock_take_timeout(0, &err);
                assert_true(again >= 0);
        }
        fd = host_lock_take_timeout(0, &err);
        assert_true(fd >= 0);
        host_lock_release(fd);
        host_lock_release(-1); /* ignored */
}

static void test_busy_names_holder(void **state) {
        (void) state;
        int ready[2];
        assert_int_equal(pipe(ready), 0);
        pid_t child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                struct vgpu_error cerr = {};
                int fd = host_lock_take(&cerr);
                (void) !write(ready[1], fd >= 0 ? "y" : "n", 1);
                pause(); /* sits on the lock */
                _exit(0);
        }
        char c;
        assert_int_equal(read(ready[0], &c, 1), 1);
        assert_int_equal(c, 'y');

        struct vgpu_error err = {};
        int r = host_lock_take_timeout(50, &err);
        kill(child, SIGKILL); /* the holder dies: the kernel lets go, and its PID is not named any more */
        waitpid(child, NULL, 0);
        close(ready[0]);
        close(ready[1]);
        assert_int_equal(r, -EBUSY);
        assert_int_equal(err.code, -EBUSY);
        char want[512];
        snprintf(want, sizeof(want),
                 "another vgpuctl or vgpud (PID %d) holds the lock %s/run/vgpuctl/lock; waited 0 s",
                 (int) child, root);
        assert_string_equal(err.message, want);
        int fd = host_lock_take_timeout(0, &err);
        assert_true(fd >= 0);
        host_lock_release(fd);
}

static void test_stale_pid_not_named(void **state) {
        (void) state;
        /* a holder that wrote no PID (an older vgpuctl) after one that died */
        pid_t dead = fork();
        if (dead == 0)
                _exit(0);
        waitpid(dead, NULL, 0);
        char p[4200];
        snprintf(p, sizeof(p), "mkdir -p '%s/run/vgpuctl' && echo %d > '%s/run/vgpuctl/lock'", root,
                 (int) dead, root);
        assert_int_equal(system(p), 0);
        snprintf(p, sizeof(p), "%s/run/vgpuctl/lock", root);
        int ready[2];
        assert_int_equal(pipe(ready), 0);
        pid_t child = fork();
        if (child == 0) {
                int fd = open(p, O_RDWR | O_CLOEXEC);
                (void) !write(ready[1], fd >= 0 && flock(fd, LOCK_EX) == 0 ? "y" : "n", 1);
                pause();
                _exit(0);
        }
        char c;
        assert_int_equal(read(ready[0], &c, 1), 1);
        close(ready[0]);
        close(ready[1]);
        struct vgpu_error err = {};
        int r = host_lock_take_timeout(0, &err);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        assert_int_equal(c, 'y');
        assert_int_equal(r, -EBUSY);
        char want[4300];
        snprintf(want, sizeof(want), "another vgpuctl or vgpud holds the lock %s; waited 0 s", p);
        assert_string_equal(err.message, want);
}

static void test_cannot_make(void **state) {
        (void) state;
        /* /run is a file: the lock's directory cannot be made */
        char p[4200];
        snprintf(p, sizeof(p), "touch '%s/run'", root);
        assert_int_equal(system(p), 0);
        struct vgpu_error err = {};
        int r = host_lock_take_timeout(0, &err);
        assert_true(r < 0);
        snprintf(p, sizeof(p), "taking the lock %s/run/vgpuctl/lock: ", root);
        if (strncmp(err.message, p, strlen(p)) != 0)
                fail_msg("message: %s", err.message);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_read),
                cmocka_unit_test(test_numbers),
                cmocka_unit_test(test_links),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_root),
                cmocka_unit_test(test_batch),
                cmocka_unit_test(test_parallel_fds),
                cmocka_unit_test(test_parallel_fd_table),
                cmocka_unit_test_setup_teardown(test_take_release, lock_setup, lock_teardown),
                cmocka_unit_test_setup_teardown(test_busy_names_holder, lock_setup, lock_teardown),
                cmocka_unit_test_setup_teardown(test_stale_pid_not_named, lock_setup, lock_teardown),
                cmocka_unit_test_setup_teardown(test_cannot_make, lock_setup, lock_teardown),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}

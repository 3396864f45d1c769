/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tenant.c — the application of the shim's tests: a process of a slice, run by test-shim with
 * LD_PRELOAD=libvgpu-cuda.so and the fake libcuda.so.1 on LD_LIBRARY_PATH. It reaches the driver
 * as the CUDA 12 runtime does (dlopen libcuda.so.1, dlsym cuGetProcAddress_v2, everything else
 * through it) and does one job per run:
 *   resolve                      the resolution checks (tenant-resolve.c)
 *   memory                       quota and reporting checks in one process (tenant-memory.c)
 *   hold BYTES                   wait for the go (fd 3 readable), allocate, print rc, hold until stdin closes
 *   fill CHUNK                   wait for the go, allocate CHUNK until refused, print count and last rc
 *   busy NS START END [KIND]     launch NS-long kernels from START to END (CLOCK_MONOTONIC ns),
 *                                KIND one of kernel, ptsz, ex, coop, graph; print GPU time in
 *                                [START, END] (busy_ns) and in all (gpu_ns)
 *   graph, twogpu                graph memory and two-GPU checks (tenant-graph.c)
 *   write BYTES BYTE free|exit   fill an allocation with BYTE (memcpy), then free it or just exit
 *   write-opaque KIND BYTES BYTE free|exit   the same with a cuMemCreate handle, an array or a
 *                                mipmapped array (KIND handle, array, mipmap; tenant-scrub.c)
 *   read BYTES BYTE              allocate, print how many bytes hold BYTE and how many are zero
 * Exit status 0 when the job ran (results are printed for test-shim to judge), 1 on a failed check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tenant.h"

struct cu cu;

struct slice *tenant_slice(void) {
        static struct slice_region *region;
        static struct slice *slice;
        if (!slice && slice_region_open(getenv("VGPU_SLICE_SHM"), &region, NULL) == 0)
                slice = slice_region_slice(region);
        return slice;
}

uint64_t tenant_slice_used(void) {
        struct slice *s = tenant_slice();
        return s ? atomic_load(&s->used) : UINT64_MAX;
}

static bool in_file(const void *p, const char *name) {
        Dl_info info;
        return p && dladdr(p, &info) && info.dli_fname && strstr(info.dli_fname, name);
}

bool in_shim(const void *p) {
        return in_file(p, "libvgpu-cuda.so");
}

bool in_driver(const void *p) {
        return in_file(p, "libcuda.so");
}

static void *sym(const char *name, int version, cuuint64_t flags) {
        void *p = NULL;
        if (cu.gpa(name, &p, version, flags, NULL) != CUDA_SUCCESS)
                return NULL;
        return p;
}

int tenant_load(void) {
        cu.lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
        if (!cu.lib) {
                fprintf(stderr, "tenant: %s\n", dlerror());
                return -1;
        }
        *(void **) &cu.gpa = dlsym(cu.lib, "cuGetProcAddress_v2");
        if (!cu.gpa)
                return -1;
#define GET(field, name) (*(void **) &cu.field = sym(name, 12040, CU_GET_PROC_ADDRESS_DEFAULT))
        GET(init, "cuInit");
        GET(device_get, "cuDeviceGet");
        GET(retain, "cuDevicePrimaryCtxRetain");
        GET(set_current, "cuCtxSetCurrent");
        GET(sync, "cuCtxSynchronize");
        GET(get_function, "cuModuleGetFunction");
        GET(mem_alloc, "cuMemAlloc");
        GET(mem_free, "cuMemFree");
        GET(mem_info, "cuMemGetInfo");
        GET(total_mem, "cuDeviceTotalMem");
        GET(htod, "cuMemcpyHtoD");
        GET(dtoh, "cuMemcpyDtoH");
        GET(launch, "cuLaunchKernel");
        GET(launch_ex, "cuLaunchKernelEx");
        GET(launch_coop, "cuLaunchCooperativeKernel");
        GET(graph_launch, "cuGraphLaunch");
#undef GET
        *(void **) &cu.launch_ptsz =
                sym("cuLaunchKernel", 12040, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
        *(void **) &cu.last_call = dlsym(cu.lib, "fakecu_last_call");
        *(void **) &cu.set_window = dlsym(cu.lib, "fakecu_set_window");
        *(void **) &cu.window_busy = dlsym(cu.lib, "fakecu_window_busy_ns");
        *(void **) &cu.all_busy = dlsym(cu.lib, "fakecu_busy_ns");
        *(void **) &cu.memset_stats = dlsym(cu.lib, "fakecu_memset_stats");
        *(void **) &cu.graph_busy = dlsym(cu.lib, "fakecu_graph_busy");
        *(void **) &cu.device_used = dlsym(cu.lib, "fakecu_device_used");
        *(void **) &cu.array_ptr = dlsym(cu.lib, "fakecu_array_ptr");

        CUdevice dev;
        CUcontext ctx;
        if (cu.init(0) != CUDA_SUCCESS || cu.device_get(&dev, 0) != CUDA_SUCCESS ||
            cu.retain(&ctx, dev) != CUDA_SUCCESS || cu.set_current(ctx) != CUDA_SUCCESS ||
            cu.get_function(&cu.busy, NULL, "busy") != CUDA_SUCCESS) {
                fprintf(stderr, "tenant: cannot set up the fake device\n");
                return -1;
        }
        return 0;
}

/* Block until test-shim makes fd 3 readable (closes its end): all tenants start together. */
static void wait_go(void) {
        char c;
        while (read(3, &c, 1) > 0)
                ;
}

static void wait_stdin_closed(void) {
        char buf[64];
        while (read(0, buf, sizeof(buf)) > 0)
                ;
}

static int do_hold(uint64_t bytes) {
        wait_go();
        CUdeviceptr p = 0;
        CUresult r = cu.mem_alloc(&p, bytes);
        printf("rc=%d\n", r);
        fflush(stdout);
        wait_stdin_closed();
        if (r == CUDA_SUCCESS)
                cu.mem_free(p);
        return 0;
}

static int do_fill(uint64_t chunk) {
        wait_go();
        unsigned n = 0;
        CUresult r;
        CUdeviceptr p;
        while ((r = cu.mem_alloc(&p, chunk)) == CUDA_SUCCESS)
                n++;
        printf("count=%u rc=%d\n", n, r);
        fflush(stdout);
        wait_stdin_closed();
        return 0;
}

static int do_busy(uint64_t ns, uint64_t start, uint64_t end, const char *kind) {
        cu.set_window(start, end);
        uint64_t arg = ns;
        void *params[] = { &arg };
        CUgraphExec graph = NULL;
        if (streq(kind, "graph") && cu.graph_busy(&graph, ns) != CUDA_SUCCESS)
                return 1;
        CUlaunchConfig config = {
                .gridDimX = 1, .gridDimY = 1, .gridDimZ = 1, .blockDimX = 1, .blockDimY = 1, .blockDimZ = 1
        };
        unsigned long launches = 0;
        /* Start a little before the window so that every tenant is running inside it. */
        while (now_ns() + 50000000 < start)
                usleep(1000);
        while (now_ns() < end) {
                CUresult r;
                if (streq(kind, "ptsz"))
                        r = cu.launch_ptsz(cu.busy, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL);
                else if (streq(kind, "ex"))
                        r = cu.launch_ex(&config, cu.busy, params, NULL);
                else if (streq(kind, "coop"))
                        r = cu.launch_coop(cu.busy, 1, 1, 1, 1, 1, 1, 0, NULL, params);
                else if (streq(kind, "graph"))
                        r = cu.graph_launch(graph, NULL);
                else
                        r = cu.launch(cu.busy, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL);
                if (r != CUDA_SUCCESS) {
                        fprintf(stderr, "tenant: launch failed: %d\n", r);
                        return 1;
                }
                launches++;
        }
        struct slice *s = tenant_slice();
        if (s && s->policy == SLICE_POLICY_BEST_EFFORT) {
                /* Ungated, the queue holds up to a thousand kernels past the window: let the one
                 * running at its end finish, report, and leave without waiting for the rest. */
                uint64_t until = end + 2 * ns + 20000000;
                while (now_ns() < until)
                        usleep(1000);
                printf("busy_ns=%llu launches=%lu\n", (unsigned long long) cu.window_busy(), launches);
                fflush(stdout);
                _exit(0);
        }
        cu.sync();
        free(graph); /* the fake's graphs are plain malloc() */
        printf("busy_ns=%llu gpu_ns=%llu launches=%lu\n", (unsigned long long) cu.window_busy(),
               (unsigned long long) cu.all_busy(), launches);
        return 0;
}

static int do_write(uint64_t bytes, int byte, bool free_it) {
        CUdeviceptr p;
        CUresult r = cu.mem_alloc(&p, bytes);
        if (r != CUDA_SUCCESS) {
                printf("rc=%d\n", r);
                return 1;
        }
        char *buf = malloc(bytes);
        memset(buf, byte, bytes);
        r = cu.htod(p, buf, bytes);
        free(buf);
        if (free_it)
                r = cu.mem_free(p);
        printf("rc=%d ptr=0x%llx\n", r, (unsigned long long) p);
        return r == CUDA_SUCCESS ? 0 : 1;
}

static int do_read(uint64_t bytes, int byte) {
        CUdeviceptr p;
        CUresult r = cu.mem_alloc(&p, bytes);
        if (r != CUDA_SUCCESS) {
                printf("rc=%d\n", r);
                return 1;
        }
        unsigned char *buf = malloc(bytes);
        r = cu.dtoh(buf, p, bytes);
        uint64_t same = 0, zero = 0;
        for (uint64_t i = 0; i < bytes; i++) {
                same += buf[i] == (unsigned char) byte;
                zero += buf[i] == 0;
        }
        free(buf);
        printf("rc=%d ptr=0x%llx pattern=%llu zero=%llu\n", r, (unsigned long long) p,
               (unsigned long long) same, (unsigned long long) zero);
        return 0;
}

int main(int argc, char **argv) {
        if (argc < 2 || tenant_load() < 0)
                return 1;
        const char *mode = argv[1];
        if (streq(mode, "resolve"))
                return tenant_resolve();
        if (streq(mode, "requests") && argc == 3)
                return tenant_requests(argv[2]);
        if (streq(mode, "memory"))
                return tenant_memory();
        if (streq(mode, "graph"))
                return tenant_graph();
        if (streq(mode, "twogpu"))
                return tenant_twogpu();
        if (streq(mode, "write-opaque") && argc == 6)
                return tenant_write_opaque(argv[2], strtoull(argv[3], NULL, 0), atoi(argv[4]),
                                           streq(argv[5], "free"));
        if (streq(mode, "hold") && argc == 3)
                return do_hold(strtoull(argv[2], NULL, 0));
        if (streq(mode, "fill") && argc == 3)
                return do_fill(strtoull(argv[2], NULL, 0));
        if (streq(mode, "busy") && argc >= 5)
                return do_busy(strtoull(argv[2], NULL, 0), strtoull(argv[3], NULL, 0),
                               strtoull(argv[4], NULL, 0), argc > 5 ? argv[5] : "kernel");
        if (streq(mode, "write") && argc == 5)
                return do_write(strtoull(argv[2], NULL, 0), atoi(argv[3]), streq(argv[4], "free"));
        if (streq(mode, "read") && argc == 4)
                return do_read(strtoull(argv[2], NULL, 0), atoi(argv[3]));
        fprintf(stderr, "tenant: bad arguments\n");
        return 1;
}

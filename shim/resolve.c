/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * resolve.c — how the application reaches our wrappers: interposed dlsym (both glibc symbol
 * versions bind to it) and cuGetProcAddress / cuGetProcAddress_v2.
 *
 * We never guess an ABI from a name. For cuGetProcAddress we call the real resolver with the
 * application's own (symbol, cudaVersion, flags) and look at the function pointer the driver
 * returns: if it is the real address of an ABI we wrap (cuMemAlloc_v2, cuLaunchKernel_ptsz, ...)
 * the application gets that ABI's wrapper, otherwise the driver's pointer untouched. So every
 * version and _ptsz/_ptds variant keeps its meaning, and an ABI newer than this shim passes
 * through unwrapped instead of being called with the wrong arguments. The real addresses are
 * learned once from libcuda itself: dlsym of each exact symbol, and the driver's own answer
 * for the (name, version, flags) that introduced each ABI.
 */
#include <dlfcn.h>
#include <stdatomic.h>
#include <string.h>

#include "shim.h"

struct entry {
        const char *symbol;
        const char *base;
        int version;
        int probe;
        void *wrapper; /* NULL: only called by the shim */
};

#define W_PTR(sym) (void *) shim_##sym
#define R_PTR(sym) NULL
#define ENTRY(sym, base, ver, probe, kind, pfn) \
        [FN_##sym] = { #sym, #base, ver, PROBE_##probe, kind##_PTR(sym) },
static const struct entry entries[FN__MAX] = { SHIM_ENTRIES(ENTRY) };
#undef ENTRY

#define KNOWN_MAX 3
void *shim_real[FN__MAX];
static void *known[FN__MAX][KNOWN_MAX]; /* real addresses of each ABI */
static void *cuda_handle;
static atomic_bool ready;
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread bool in_init; /* the driver may call dlsym while we probe it */

typedef void *(*dlsym_fn)(void *, const char *);
static _Atomic(dlsym_fn) real_dlsym_ptr;

/* Not instrumented: runs inside the ASan runtime's own initialization (see dlsym below). */
__attribute__((no_sanitize("address", "undefined"))) static dlsym_fn real_dlsym(void) {
        dlsym_fn f = atomic_load_explicit(&real_dlsym_ptr, memory_order_acquire);
        if (f)
                return f;
        /* The next dlsym after us is libc's. GLIBC_2.34 is where glibc >= 2.34 defines it; older
         * x86-64 glibc only has GLIBC_2.2.5 (aarch64: GLIBC_2.17). */
        static const char *const versions[] = { "GLIBC_2.34", "GLIBC_2.2.5", "GLIBC_2.17" };
        for (size_t i = 0; i < ELEMENTSOF(versions) && !f; i++)
                *(void **) &f = dlvsym(RTLD_NEXT, "dlsym", versions[i]);
        atomic_store_explicit(&real_dlsym_ptr, f, memory_order_release);
        return f;
}

static bool claimed_elsewhere(const void *p, enum shim_fn fn) {
        for (unsigned i = 0; i < FN__MAX; i++)
                for (unsigned k = 0; i != fn && k < KNOWN_MAX; k++)
                        if (known[i][k] == p)
                                return true;
        return false;
}

static void *probe_driver(enum shim_fn fn, cuuint64_t flags) {
        const struct entry *e = &entries[fn];
        shim_pfn_cuGetProcAddress_v2 gpa2 = (shim_pfn_cuGetProcAddress_v2) known[FN_cuGetProcAddress_v2][0];
        shim_pfn_cuGetProcAddress gpa1 = (shim_pfn_cuGetProcAddress) known[FN_cuGetProcAddress][0];
        void *p = NULL;
        CUresult r = gpa2   ? gpa2(e->base, &p, e->version, flags, NULL)
                     : gpa1 ? gpa1(e->base, &p, e->version, flags)
                            : CUDA_ERROR_NOT_FOUND;
        return r == CUDA_SUCCESS ? p : NULL;
}

static void learn(enum shim_fn fn, unsigned slot, void *p) {
        /* A pointer already known as another ABI stays that ABI's (DEFAULT probes come last). */
        if (p && !claimed_elsewhere(p, fn))
                known[fn][slot] = p;
}

static bool init_cuda(void) {
        void *h = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
        if (!h)
                return false; /* not loaded yet: nothing to resolve against */
        for (unsigned fn = 0; fn < FN__MAX; fn++)
                if (entries[fn].probe != PROBE_NV)
                        known[fn][0] = real_dlsym()(h, entries[fn].symbol);
        for (unsigned fn = 0; fn < FN__MAX; fn++)
                switch (entries[fn].probe) {
                case PROBE_N:
                        learn(fn, 1, probe_driver(fn, CU_GET_PROC_ADDRESS_DEFAULT));
                        break;
                case PROBE_L:
                        learn(fn, 1, probe_driver(fn, CU_GET_PROC_ADDRESS_LEGACY_STREAM));
                        break;
                case PROBE_P:
                        learn(fn, 1, probe_driver(fn, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM));
                        break;
                }
        for (unsigned fn = 0; fn < FN__MAX; fn++)
                if (entries[fn].probe == PROBE_L)
                        learn(fn, 2, probe_driver(fn, CU_GET_PROC_ADDRESS_DEFAULT));
        for (unsigned fn = 0; fn < FN__MAX; fn++)
                for (unsigned k = 0; k < KNOWN_MAX && !shim_real[fn]; k++)
                        shim_real[fn] = known[fn][k];
        cuda_handle = h; /* kept open: the pointers above stay valid */
        shim_log(SHIM_LOG_DEBUG, "resolved the driver's entry points");
        return true;
}

bool shim_cuda_ready(void) {
        if (atomic_load_explicit(&ready, memory_order_acquire))
                return true;
        if (in_init)
                return false;
        pthread_mutex_lock(&init_lock);
        if (!atomic_load_explicit(&ready, memory_order_relaxed)) {
                in_init = true;
                if (init_cuda())
                        atomic_store_explicit(&ready, true, memory_order_release);
                in_init = false;
        }
        pthread_mutex_unlock(&init_lock);
        return atomic_load_explicit(&ready, memory_order_acquire);
}

void *shim_real_get(enum shim_fn fn) {
        if (entries[fn].probe == PROBE_NV) {
                void *p = __atomic_load_n(&shim_real[fn], __ATOMIC_ACQUIRE);
                if (p)
                        return p;
                void *h = dlopen("libnvidia-ml.so.1", RTLD_LAZY | RTLD_NOLOAD);
                if (!h)
                        return NULL;
                p = real_dlsym()(h, entries[fn].symbol);
                void *expected = NULL;
                if (p && !__atomic_compare_exchange_n(&shim_real[fn], &expected, p, false, __ATOMIC_ACQ_REL,
                                                      __ATOMIC_ACQUIRE))
                        p = expected;
                return p;
        }
        return shim_cuda_ready() ? shim_real[fn] : NULL;
}

/* The wrapper for real address p, or p itself when it is none of the ABIs we wrap. */
static void *wrap_pointer(void *p, const char *asked) {
        for (unsigned fn = 0; fn < FN__MAX; fn++) {
                if (!entries[fn].wrapper)
                        continue;
                if (p == entries[fn].wrapper)
                        return p;
                for (unsigned k = 0; k < KNOWN_MAX; k++)
                        if (known[fn][k] == p) {
                                shim_log(SHIM_LOG_DEBUG, "%s -> %s (wrapped)", asked, entries[fn].symbol);
                                return entries[fn].wrapper;
                        }
        }
        return p;
}

static void *wrap_nvml(void *p, const char *name) {
        for (unsigned fn = 0; fn < FN__MAX; fn++) {
                if (entries[fn].probe != PROBE_NV || !streq(name, entries[fn].symbol))
                        continue;
                /* Our own export (dlsym(RTLD_DEFAULT) before NVML is loaded) is never the real one. */
                if (p == entries[fn].wrapper)
                        return p;
                /* Accept it if it is libnvidia-ml's (or the first we see when that is not loaded
                 * under its usual name); another library's function of that name stays its own. */
                void *expected = NULL;
                if (__atomic_compare_exchange_n(&shim_real[fn], &expected, p, false, __ATOMIC_ACQ_REL,
                                                __ATOMIC_ACQUIRE) ||
                    expected == p)
                        return entries[fn].wrapper;
                return p;
        }
        return p;
}

static void *dlsym_slow(void *handle, const char *name) {
        void *p = real_dlsym()(handle, name);
        if (!p || in_init)
                return p;
        if (name[0] == 'n')
                return wrap_nvml(p, name);
        if (!shim_cuda_ready())
                return p;
        return wrap_pointer(p, name);
}

/*
 * The interposed dlsym. Names that are not the driver's or NVML's go to libc's dlsym as a tail
 * call (this file is always built optimized, see meson.build), so that glibc still sees the
 * caller's return address: dlsym(RTLD_NEXT, ...) must search after the caller, not after us.
 * No sanitizer instrumentation: the ASan runtime itself calls dlsym before it is initialized.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnonnull-compare"
__attribute__((visibility("default"), no_sanitize("address", "undefined"))) void *dlsym(void *handle,
                                                                                        const char *name) {
        /* dlfcn.h declares name nonnull; programs pass NULL all the same. */
        if (name && ((name[0] == 'c' && name[1] == 'u') ||
                     (name[0] == 'n' && name[1] == 'v' && name[2] == 'm' && name[3] == 'l')))
                return dlsym_slow(handle, name);
        return real_dlsym()(handle, name);
}
#pragma GCC diagnostic pop

CUresult shim_cuGetProcAddress_v2(const char *symbol, void **pfn, int version, cuuint64_t flags,
                                  CUdriverProcAddressQueryResult *status) {
        shim_pfn_cuGetProcAddress_v2 real = REAL(cuGetProcAddress_v2);
        if (!real)
                return CUDA_ERROR_NOT_INITIALIZED;
        CUresult r = real(symbol, pfn, version, flags, status);
        if (r == CUDA_SUCCESS && pfn && *pfn)
                *pfn = wrap_pointer(*pfn, symbol);
        return r;
}
SHIM_EXPORT(cuGetProcAddress_v2);

CUresult shim_cuGetProcAddress(const char *symbol, void **pfn, int version, cuuint64_t flags) {
        shim_pfn_cuGetProcAddress real = REAL(cuGetProcAddress);
        if (!real)
                return CUDA_ERROR_NOT_INITIALIZED;
        CUresult r = real(symbol, pfn, version, flags);
        if (r == CUDA_SUCCESS && pfn && *pfn)
                *pfn = wrap_pointer(*pfn, symbol);
        return r;
}
SHIM_EXPORT(cuGetProcAddress);

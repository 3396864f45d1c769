/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-replay.c — runs a libFuzzer harness of bench/fuzz over every file of its seed corpus, as
 * a regression test built with the project's compiler: the inputs kept there (valid examples,
 * each bad case, and what fuzzing once found, e.g. the host.yaml alias bomb) must keep passing
 * the harness's checks, and the harness must keep building. libFuzzer itself runs them in
 * bench/fuzz/run.sh. Usage: fuzz-replay-NAME CORPUS_DIR...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int replay(const char *path) {
        FILE *f = fopen(path, "re");
        if (!f) {
                perror(path);
                return -1;
        }
        size_t size = 0, allocated = 4096;
        uint8_t *data = malloc(allocated);
        for (size_t n; data && (n = fread(data + size, 1, allocated - size, f)) > 0;) {
                size += n;
                if (size == allocated) {
                        uint8_t *bigger = realloc(data, allocated *= 2);
                        if (!bigger)
                                free(data);
                        data = bigger;
                }
        }
        fclose(f);
        if (!data) {
                fprintf(stderr, "%s: out of memory\n", path);
                return -1;
        }
        /* libFuzzer hands over a copy of exactly size bytes: so does this, for ASan to see overreads */
        uint8_t *exact = malloc(size ? size : 1);
        if (exact) {
                memcpy(exact, data, size);
                LLVMFuzzerTestOneInput(exact, size);
        }
        free(exact);
        free(data);
        return exact ? 0 : -1;
}

int main(int argc, char **argv) {
        if (LLVMFuzzerInitialize)
                LLVMFuzzerInitialize(&argc, &argv);
        int inputs = 0, failed = 0;
        for (int i = 1; i < argc; i++) {
                DIR *d = opendir(argv[i]);
                if (!d) {
                        perror(argv[i]);
                        return 1;
                }
                for (struct dirent *de; (de = readdir(d));) {
                        if (de->d_name[0] == '.')
                                continue;
                        char path[4096];
                        snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
                        failed += replay(path) < 0;
                        inputs++;
                }
                closedir(d);
        }
        printf("fuzz-replay: %d inputs, %d unreadable\n", inputs, failed);
        return inputs == 0 || failed ? 1 : 0;
}

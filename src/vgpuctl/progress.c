/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * progress.c — "apply: step 3 of 40: create UUID (TYPE on PARENT)" on stderr while long work
 * runs, rewritten in place and cleared at the end. Only for a person at a terminal: stderr not
 * a tty (a script, a log, systemd) or --json gets nothing, so no output a program reads changes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "vgpuctl.h"

static bool shown; /* a line is on the screen, to clear at the end */

bool cli_progress_wanted(const struct cli *cli) {
        return !cli->json && isatty(STDERR_FILENO);
}

void cli_progress(const struct cli *cli, const char *verb, size_t n, size_t n_steps, const char *fmt, ...) {
        if (!cli_progress_wanted(cli))
                return;
        /* \r and erase-line: one line that changes, not a screenful of history */
        fprintf(stderr, "\r\033[K%s: step %zu of %zu: ", verb, n, n_steps);
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fflush(stderr);
        shown = true;
}

void cli_progress_done(void) {
        if (shown)
                fputs("\r\033[K", stderr);
        shown = false;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* report.c — `vgpuctl report`: placeholder until lib/report lands. */
#include "vgpuctl.h"

const struct cli_option report_options[] = { { "output", 'o', "FILE", "write the tarball to FILE" }, {} };

int verb_report(struct cli *cli) {
        (void) cli;
        return cli_error(EXIT_FAILED, "report: not built yet");
}

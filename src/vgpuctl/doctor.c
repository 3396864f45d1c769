/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* doctor.c — `vgpuctl doctor`: placeholder until lib/doctor lands. */
#include "vgpuctl.h"

const struct cli_option doctor_options[] = { {} };

int verb_doctor(struct cli *cli) {
        (void) cli;
        return cli_error(EXIT_FAILED, "doctor: not built yet");
}

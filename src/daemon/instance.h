/* SPDX-License-Identifier: MIT */
/* One connscope per target: a lock file per watched PID under
 * /run/connscope, naming the HTTP address of the instance that holds it. */
#ifndef CS_INSTANCE_H
#define CS_INSTANCE_H
#include <stdbool.h>

#define INSTANCE_DIR "/run/connscope"

struct instance;

/* Takes INSTANCE_DIR/PID.lock (flock, released when the process ends) and
 * writes addr into it. If another connscope holds it: one line naming that
 * one's address and -EBUSY, unless force (then a second instance runs, and
 * says so). 0 or -errno; *out freed by instance_free. */
int instance_new(int pid, const char *addr, bool force, struct instance **out);
void instance_free(struct instance *in);
#endif

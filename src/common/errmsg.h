/* SPDX-License-Identifier: MIT */
/* One way to report a failure: "<program>: <what failed and what to do>" on
 * stderr, and the negative errno handed back so the caller can return it. */
#ifndef CS_ERRMSG_H
#define CS_ERRMSG_H

/* The program name every message starts with ("connscope"). */
void errmsg_set_program(const char *name);
/* Prints the message and returns err (a negative errno), so that
 * `return errmsg(-ENOENT, "PID %d does not exist", pid);` is one line. */
__attribute__((format(printf, 2, 3)))
int errmsg(int err, const char *fmt, ...);
#endif

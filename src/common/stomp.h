/* SPDX-License-Identifier: MIT */
/* The few STOMP 1.2 frames the seed's clients use (CONNECT, SEND with a
 * receipt) and the answers (CONNECTED, RECEIPT). */
#ifndef CS_STOMP_H
#define CS_STOMP_H
#include <stddef.h>

/* Writes "COMMAND\nheaders\n\nbody\0" with headers given as one string of
 * "name:value\n" lines. Returns the length (NUL included) or -1. */
int stomp_frame(char *buf, size_t cap, const char *command, const char *headers, const char *body);
/* The command of a frame ("SEND"), copied to out; -1 if not a frame. */
int stomp_command(const char *buf, size_t len, char *out, size_t cap);
/* Value of a header of the frame in buf[0..len), copied to out; -1 if absent. */
int stomp_header(const char *buf, size_t len, const char *name, char *out, size_t cap);
#endif

// SPDX-License-Identifier: MIT
/* One connscope per target PID: two instances on one PID would both attach
 * and double the cost without either saying so. The lock is an flock on
 * /run/connscope/PID.lock, so a crashed instance never leaves it held. */
#define _GNU_SOURCE
#include "instance.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "errmsg.h"

struct instance {
	int fd;
};

int instance_new(int pid, const char *addr, bool force, struct instance **out)
{
	struct instance *in;
	char path[64], held[128] = "";
	ssize_t n;
	int err;

	in = calloc(1, sizeof(*in));
	if (!in)
		return -ENOMEM;
	in->fd = -1;
	/* Shared by instances of any user (root, the unit's dynamic user, one
	 * started with capabilities only): sticky and writable by all, as /tmp */
	if (!mkdir(INSTANCE_DIR, 01777))
		chmod(INSTANCE_DIR, 01777);
	snprintf(path, sizeof(path), INSTANCE_DIR "/%d.lock", pid);
	in->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (in->fd < 0 && (errno == EACCES || errno == EPERM || errno == EROFS || errno == ENOENT)) {
		/* no place this user may lock in: run unguarded rather than refuse
		 * to run at all; the capability set, not a lock, gates attaching */
		*out = in;
		return 0;
	}
	if (in->fd < 0) {
		err = errmsg(-errno, "cannot open %s: %s (pass --force to run without it)", path,
			     strerror(errno));
		goto cleanup;
	}
	fchmod(in->fd, 0666); /* the umask may have taken bits: another user's instance writes too */
	if (flock(in->fd, LOCK_EX | LOCK_NB)) {
		err = -errno;
		if (err != -EWOULDBLOCK) {
			errmsg(err, "cannot lock %s: %s", path, strerror(-err));
			goto cleanup;
		}
		n = pread(in->fd, held, sizeof(held) - 1, 0);
		held[n > 0 ? n : 0] = '\0';
		held[strcspn(held, "\n")] = '\0';
		if (!force) {
			err = errmsg(-EBUSY, "PID %d is already watched by connscope at http://%s "
				     "(stop that one, or pass --force to run a second)", pid,
				     held[0] ? held : "(address unknown)");
			goto cleanup;
		}
		fprintf(stderr, "connscope: --force: PID %d is also watched by connscope at http://%s\n",
			pid, held[0] ? held : "(address unknown)");
		close(in->fd);
		in->fd = -1;
		*out = in;
		return 0;
	}
	n = snprintf(held, sizeof(held), "%s\n", addr);
	if (ftruncate(in->fd, 0) || pwrite(in->fd, held, n, 0) != n) {
		err = errmsg(-errno, "cannot write %s: %s", path, strerror(errno));
		goto cleanup;
	}
	*out = in;
	return 0;
cleanup:
	instance_free(in);
	return err;
}

void instance_free(struct instance *in)
{
	if (!in)
		return;
	/* the file stays: removing it could let a third instance lock a new
	 * file while a second still waits on this one; flock ends with us */
	if (in->fd >= 0)
		close(in->fd);
	free(in);
}

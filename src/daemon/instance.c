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
	bool locked;
	char path[64];
};

/* Did the lock we hold land on the file still at path? An instance that
 * exits removes its file while holding the lock; one that opened the file
 * before that and locked it after holds a lock on a name nobody sees. */
static bool lock_is_current(int fd, const char *path)
{
	struct stat a, b;

	return !fstat(fd, &a) && !stat(path, &b) && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Opens in->path and locks it, on the file that is still there. 0 locked;
 * -EWOULDBLOCK another instance holds it (in->fd open, to read its address);
 * -EACCES no place this user may lock in; other -errno. */
static int lock_take(struct instance *in)
{
	for (int tries = 0; tries < 3; tries++) {
		in->fd = open(in->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (in->fd < 0)
			return errno == EPERM || errno == EROFS || errno == ENOENT ? -EACCES : -errno;
		if (flock(in->fd, LOCK_EX | LOCK_NB))
			return -errno;
		in->locked = lock_is_current(in->fd, in->path);
		if (in->locked)
			return 0;
		close(in->fd);
		in->fd = -1;
	}
	return -EAGAIN;
}

int instance_new(int pid, const char *addr, bool force, struct instance **out)
{
	struct instance *in;
	char held[128] = "";
	ssize_t n;
	int err;

	in = calloc(1, sizeof(*in));
	if (!in)
		return -ENOMEM;
	in->fd = -1;
	/* Not writable by all: a lock file another user could plant (or hold)
	 * would let them truncate files or keep connscope from running. The
	 * unit's RuntimeDirectory= makes it for its user; root makes it here. */
	mkdir(INSTANCE_DIR, 0755);
	snprintf(in->path, sizeof(in->path), INSTANCE_DIR "/%d.lock", pid);
	err = lock_take(in);
	if (err == -EACCES) {
		/* no place this user may lock in (a capabilities-only run without
		 * the unit): run unguarded rather than refuse to run at all */
		*out = in;
		return 0;
	}
	if (err == -EWOULDBLOCK) {
		n = pread(in->fd, held, sizeof(held) - 1, 0);
		held[n > 0 ? n : 0] = '\0';
		held[strcspn(held, "\n")] = '\0';
		close(in->fd);
		in->fd = -1;
		if (!force) {
			err = errmsg(-EBUSY, "PID %d is already watched by connscope at http://%s "
				     "(stop that one, or pass --force to run a second)", pid,
				     held[0] ? held : "(address unknown)");
			goto cleanup;
		}
		fprintf(stderr, "connscope: --force: PID %d is also watched by connscope at http://%s\n",
			pid, held[0] ? held : "(address unknown)");
		*out = in;
		return 0;
	}
	if (err) {
		errmsg(err, "cannot lock %s: %s (pass --force to run without it)", in->path, strerror(-err));
		goto cleanup;
	}
	n = snprintf(held, sizeof(held), "%s\n", addr);
	if (ftruncate(in->fd, 0) || pwrite(in->fd, held, n, 0) != n) {
		err = errmsg(-errno, "cannot write %s: %s", in->path, strerror(errno));
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
	/* removed while still locked: see lock_is_current */
	if (in->locked)
		unlink(in->path);
	if (in->fd >= 0)
		close(in->fd);
	free(in);
}

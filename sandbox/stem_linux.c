// The stem cell launcher runs here, in a C constructor, before the Go
// runtime starts: a stem cell execs this very binary (/proc/self/exe of its
// waiting init), and starting gustd's Go runtime and package init would
// cost milliseconds of every cold start. libcontainer's nsenter uses the
// same trick for the container init.
//
// It reads the function's environment (NUL-separated KEY=VALUE) from stdin,
// gives the function /dev/null as stdin, closes every descriptor above
// stderr (the init was passed its binary as 3: initexe_linux.c) and execs
// /var/task/bootstrap.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define STEM_MAX_ENV (1 << 20)
#define STEM_MAX_VARS 4096

static char stem_buf[STEM_MAX_ENV + 1];
static char *stem_envp[STEM_MAX_VARS + 1];

__attribute__((constructor)) static void gust_stem(void)
{
	const char *marker = getenv("_GUST_STEM");
	if (marker == NULL || strcmp(marker, "1") != 0 || getpid() != 1)
		return;

	size_t len = 0;
	for (;;) {
		ssize_t n = read(0, stem_buf + len, STEM_MAX_ENV - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "gust stem: read environment: %s\n", strerror(errno));
			_exit(126);
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == STEM_MAX_ENV) {
			fprintf(stderr, "gust stem: environment over %d bytes\n", STEM_MAX_ENV);
			_exit(126);
		}
	}
	stem_buf[len] = '\0';

	int count = 0;
	for (size_t i = 0; i < len && count < STEM_MAX_VARS;) {
		size_t n = strlen(stem_buf + i);
		if (n > 0)
			stem_envp[count++] = stem_buf + i;
		i += n + 1;
	}
	stem_envp[count] = NULL;

	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		close(null);
	}
	if (syscall(SYS_close_range, 3, ~0U, 0) != 0) {
		for (int fd = 3; fd < 1024; fd++) /* before Linux 5.9 */
			close(fd);
	}
	char *argv[] = {"/var/task/bootstrap", NULL};
	execve(argv[0], argv, stem_envp);
	fprintf(stderr, "gust stem: exec %s: %s\n", argv[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

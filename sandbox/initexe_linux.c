// A stem cell's init runs from a small binary of its own when gustd has one
// (cmd/gustd-init, embedded in gustd by `make build`): libcontainer always
// re-executes /proc/self/exe as "<argv0> init", and gustd's own start-up —
// its Go runtime and the package init of gRPC, Raft, Prometheus and
// OpenTelemetry — cost about 5 ms of CPU and 2 MB of memory in every
// sandbox while it waited at exec. This constructor runs before nsenter's
// (a lower priority number runs first) and, in such an init, execs the
// small binary instead, which then does everything the init would have.
//
// The binary comes as the init's first extra descriptor (3), a sealed
// memfd (sandbox.UseInit): sealed, so no sandbox can overwrite what the
// others run (CVE-2019-5736); passed, because libcontainer marks every other
// descriptor close-on-exec and gives the init no environment of ours. The
// stem launcher (stem_linux.c) closes it before the function runs.

#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GUST_INIT_FD 3
#define GUST_INIT_NAME "gustd-init"

__attribute__((constructor(101))) static void gust_init_exe(int argc, char **argv, char **envp)
{
	if (argc < 2 || strcmp(argv[1], "init") != 0)
		return;
	int seals = fcntl(GUST_INIT_FD, F_GET_SEALS);
	if (seals < 0 || (seals & F_SEAL_WRITE) == 0)
		return; /* no small init: this binary is the init */
	char link[PATH_MAX];
	ssize_t n = readlink("/proc/self/fd/3", link, sizeof link - 1);
	if (n < 0)
		return;
	link[n] = '\0';
	if (strstr(link, GUST_INIT_NAME) == NULL)
		return;
	struct stat self, small;
	if (stat("/proc/self/exe", &self) != 0 || fstat(GUST_INIT_FD, &small) != 0)
		return;
	if (self.st_dev == small.st_dev && self.st_ino == small.st_ino)
		return; /* already the small init */
	fexecve(GUST_INIT_FD, argv, envp);
	/* On failure this binary carries on as the init, as before. */
}

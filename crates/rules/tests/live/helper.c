/* Behaviours of the live scenarios that busybox has no applet for. Built statically by the
 * live scenario test and copied into the scenario image as /usr/local/bin/scenario-helper.
 *
 *   scenario-helper memfd-exec     copy /bin/busybox into a memfd and execute it (`true`)
 *   scenario-helper ptrace-attach  fork a sleeping child, PTRACE_ATTACH to it, detach, reap
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

static int memfd_exec(void) {
	int source = open("/bin/busybox", O_RDONLY);
	struct stat st;
	if (source < 0 || fstat(source, &st) != 0) {
		perror("open /bin/busybox");
		return 1;
	}
	int memfd = memfd_create("payload", 0);
	if (memfd < 0) {
		perror("memfd_create");
		return 1;
	}
	off_t offset = 0;
	while (offset < st.st_size) {
		if (sendfile(memfd, source, &offset, st.st_size - offset) <= 0) {
			perror("sendfile");
			return 1;
		}
	}
	char *argv[] = {"true", NULL};
	char *envp[] = {NULL};
	fexecve(memfd, argv, envp);
	perror("fexecve");
	return 1;
}

static int ptrace_attach(void) {
	pid_t child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	usleep(100000);
	if (ptrace(PTRACE_ATTACH, child, NULL, NULL) != 0) {
		perror("PTRACE_ATTACH");
		kill(child, SIGKILL);
		return 1;
	}
	waitpid(child, NULL, 0);
	ptrace(PTRACE_DETACH, child, NULL, NULL);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return 0;
}

int main(int argc, char **argv) {
	if (argc == 2 && strcmp(argv[1], "memfd-exec") == 0)
		return memfd_exec();
	if (argc == 2 && strcmp(argv[1], "ptrace-attach") == 0)
		return ptrace_attach();
	fprintf(stderr, "usage: scenario-helper memfd-exec|ptrace-attach\n");
	return 2;
}

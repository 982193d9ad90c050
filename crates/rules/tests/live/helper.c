/* Behaviours of the live scenarios that busybox has no applet for. Built statically by the
 * live scenario test and copied into the scenario image as /usr/local/bin/scenario-helper.
 *
 *   scenario-helper memfd-exec          copy /bin/busybox into a memfd and execute it (`true`)
 *   scenario-helper ptrace-attach       fork a sleeping child, PTRACE_ATTACH to it, detach, reap
 *   scenario-helper spawn-shell CMD     run `/bin/sh -c CMD` as a child and wait for it (copied
 *                                       under a server's name, it is a server spawning a shell)
 *   scenario-helper unix-connect PATH   serve a Unix socket at PATH and connect to it
 *   scenario-helper mount-tmpfs DIR     mount a tmpfs on DIR and unmount it
 *   scenario-helper setns-uts PID       join the UTS namespace of process PID
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
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

static int spawn_shell(char *command) {
	pid_t child = fork();
	if (child == 0) {
		execl("/bin/sh", "sh", "-c", command, (char *)NULL);
		perror("execl /bin/sh");
		_exit(127);
	}
	int status = 0;
	waitpid(child, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

static int unix_connect(const char *path) {
	struct sockaddr_un address = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(address.sun_path)) {
		fprintf(stderr, "socket path too long: %s\n", path);
		return 1;
	}
	strcpy(address.sun_path, path);
	unlink(path);
	int server = socket(AF_UNIX, SOCK_STREAM, 0);
	if (server < 0 || bind(server, (struct sockaddr *)&address, sizeof(address)) != 0 ||
	    listen(server, 1) != 0) {
		perror("serve the socket");
		return 1;
	}
	int client = socket(AF_UNIX, SOCK_STREAM, 0);
	if (client < 0 || connect(client, (struct sockaddr *)&address, sizeof(address)) != 0) {
		perror("connect");
		return 1;
	}
	close(client);
	close(server);
	unlink(path);
	return 0;
}

static int mount_tmpfs(const char *dir) {
	if (mount("none", dir, "tmpfs", 0, NULL) != 0) {
		perror("mount tmpfs");
		return 1;
	}
	return umount(dir) == 0 ? 0 : 1;
}

static int setns_uts(const char *pid) {
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/uts", atoi(pid));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWUTS) != 0) {
		perror(path);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv) {
	if (argc == 2 && strcmp(argv[1], "memfd-exec") == 0)
		return memfd_exec();
	if (argc == 2 && strcmp(argv[1], "ptrace-attach") == 0)
		return ptrace_attach();
	if (argc == 3 && strcmp(argv[1], "spawn-shell") == 0)
		return spawn_shell(argv[2]);
	if (argc == 3 && strcmp(argv[1], "unix-connect") == 0)
		return unix_connect(argv[2]);
	if (argc == 3 && strcmp(argv[1], "mount-tmpfs") == 0)
		return mount_tmpfs(argv[2]);
	if (argc == 3 && strcmp(argv[1], "setns-uts") == 0)
		return setns_uts(argv[2]);
	fprintf(stderr, "usage: scenario-helper memfd-exec|ptrace-attach|spawn-shell CMD|"
			"unix-connect PATH|mount-tmpfs DIR|setns-uts PID\n");
	return 2;
}

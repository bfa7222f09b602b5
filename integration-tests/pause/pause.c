/*
 * stockade-test pause: the shape of the upstream Kubernetes pause container, for
 * the CRI tests' pause image (one static /pause file, no environment).
 *
 * It holds the pod's namespaces: sleeps until SIGTERM or SIGINT (then exits 0) and,
 * as pid 1 of a shared pid namespace, reaps every zombie reparented to it.
 * Built by the test harness with `gcc -static` (integration-tests/src/image.rs).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

static void on_child(int sig)
{
	(void)sig;
	int saved = errno;
	/* Reap every child that exited; more than one may share one SIGCHLD. */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	errno = saved;
}

static int handle(int sig, void (*fn)(int), int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		puts("stockade-test-pause");
		return 0;
	}
	if (getpid() != 1)
		fprintf(stderr, "pause: warning: not pid 1\n");
	if (handle(SIGINT, on_term, 0) < 0 || handle(SIGTERM, on_term, 0) < 0 ||
	    handle(SIGCHLD, on_child, SA_NOCLDSTOP | SA_RESTART) < 0) {
		perror("pause: sigaction");
		return 1;
	}
	for (;;)
		pause();
	return 42;
}

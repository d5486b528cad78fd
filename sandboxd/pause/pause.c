/*
 * crisp-pause - the infra process of a pod.
 *
 * It holds the pod's namespaces open while containers come and go: it
 * sleeps until a signal, reaps children that are reparented to it when the
 * pod shares one PID namespace (it is PID 1 there), and exits on SIGINT or
 * SIGTERM.  Built static, so the pod's root file system needs nothing but
 * this binary.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig)
{
	_exit(128 + sig);
}

static void on_child(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		puts("crisp-pause");
		return 0;
	}
	struct sigaction stop = { .sa_handler = on_stop }, child = { .sa_handler = on_child };
	sigemptyset(&stop.sa_mask);
	sigemptyset(&child.sa_mask);
	child.sa_flags = SA_NOCLDSTOP | SA_RESTART;
	if (sigaction(SIGINT, &stop, NULL) < 0 || sigaction(SIGTERM, &stop, NULL) < 0 ||
	    sigaction(SIGCHLD, &child, NULL) < 0)
		return 1;
	for (;;)
		pause();
}

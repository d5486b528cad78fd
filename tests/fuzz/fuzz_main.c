/*
 * fuzz_main.c - replays fuzz inputs without libFuzzer (systemd's
 * src/fuzz/fuzz-main.c).
 *
 * Linked with each harness as replay_<name> in every build, so the normal
 * test run feeds the committed corpus, crash inputs included, through the
 * harness under whatever sanitizers that build has.  The arguments are files
 * or directories; a directory stands for the regular files in it (not
 * recursive, hidden files skipped), in name order so a failure is
 * reproducible.  A harness reports a bug by crashing; the replay also fails
 * when an input leaves a file descriptor open, which libFuzzer does not check.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static long count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d) {
		perror("opendir /proc/self/fd");
		exit(EXIT_FAILURE);
	}
	long n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Exactly size bytes, so an ASan build catches a harness reading past the input. */
static uint8_t *read_input(const char *path, size_t *ret_size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return NULL;
	}
	size_t size = (size_t)st.st_size;
	uint8_t *buf = malloc(size ? size : 1);
	size_t got = 0;
	while (buf && got < size) {
		ssize_t n = read(fd, buf + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			buf = NULL;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	*ret_size = size;
	return buf;
}

static int run_file(const char *path)
{
	size_t size = 0;
	uint8_t *data = read_input(path, &size);
	if (!data) {
		fprintf(stderr, "%s: cannot read: %s\n", path, strerror(errno));
		return -1;
	}
	long before = count_fds();
	LLVMFuzzerTestOneInput(data, size);
	long after = count_fds();
	free(data);
	if (after != before) {
		fprintf(stderr, "%s: %ld file descriptors open before, %ld after\n", path, before,
			after);
		return -1;
	}
	return 0;
}

static int visible(const struct dirent *de)
{
	return de->d_name[0] != '.';
}

/* Returns the number of inputs run, or -1 after the first failure. */
static long run_path(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(path) < 0 ? -1 : 1;

	struct dirent **names;
	int n = scandir(path, &names, visible, alphasort);
	if (n < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	long ran = 0;
	for (int i = 0; i < n; i++) {
		size_t len = strlen(path) + 1 + strlen(names[i]->d_name) + 1;
		char *p = malloc(len);
		if (!p)
			abort();
		snprintf(p, len, "%s/%s", path, names[i]->d_name);
		if (ran >= 0 && stat(p, &st) == 0 && S_ISREG(st.st_mode))
			ran = run_file(p) < 0 ? -1 : ran + 1;
		free(p);
		free(names[i]);
	}
	free(names);
	return ran;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIRECTORY...\n", argv[0]);
		return EXIT_FAILURE;
	}
	long total = 0;
	for (int i = 1; i < argc; i++) {
		long n = run_path(argv[i]);
		if (n < 0)
			return EXIT_FAILURE;
		total += n;
	}
	/* An empty run is a wrong path, not a pass. */
	if (total == 0) {
		fprintf(stderr, "no inputs found\n");
		return EXIT_FAILURE;
	}
	fprintf(stderr, "%ld inputs replayed\n", total);
	return EXIT_SUCCESS;
}

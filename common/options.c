/*
 * options.c - command-line parsing shared by the supervisor and the daemons.
 */
#include "options.h"

#include "log.h"

#include <getopt.h>
#include <limits.h>
#include <sys/stat.h>

enum {
	OPT_CONFIG = 0x100,
	OPT_ROOT,
	OPT_STATE,
	OPT_LISTEN,
	OPT_LOG_LEVEL,
	OPT_CONTROL_FD,
	OPT_HELP,
	OPT_VERSION,
	OPT_PRINT_PROFILE,
};

static const struct option long_options[] = {
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "root", required_argument, NULL, OPT_ROOT },
	{ "state", required_argument, NULL, OPT_STATE },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "control-fd", required_argument, NULL, OPT_CONTROL_FD },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "print-profile", no_argument, NULL, OPT_PRINT_PROFILE },
	{ NULL, 0, NULL, 0 },
};

static int check_absolute(const char *opt, const char *v, CrispError **err)
{
	if (!v[0] || v[0] != '/')
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "--%s: \"%s\" is not an absolute path", opt, v);
	if (strlen(v) >= PATH_MAX / 2)
		return crisp_error_set(err, CRISP_ERR_INVALID, ENAMETOOLONG, "--%s: path too long",
				       opt);
	return 0;
}

int crisp_options_parse(CrispOptions *o, int argc, char **argv, CrispError **err)
{
	const char *root = NULL, *state = NULL, *listen = NULL, *level = NULL;
	int c, r;

	*o = (CrispOptions){ .control_fd = -1 };
	o->config_path = xstrdup(CRISP_DEFAULT_CONFIG);

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		switch (c) {
		case OPT_CONFIG:
			if ((r = check_absolute("config", optarg, err)) < 0)
				return r;
			free(o->config_path);
			o->config_path = xstrdup(optarg);
			o->config_given = true;
			break;
		case OPT_ROOT:
			if ((r = check_absolute("root", optarg, err)) < 0)
				return r;
			root = optarg;
			break;
		case OPT_STATE:
			if ((r = check_absolute("state", optarg, err)) < 0)
				return r;
			state = optarg;
			break;
		case OPT_LISTEN:
			if (strncmp(optarg, "unix://", 7) != 0)
				return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
						       "--listen: \"%s\" is not unix://PATH",
						       optarg);
			if ((r = check_absolute("listen", optarg + 7, err)) < 0)
				return r;
			listen = optarg;
			break;
		case OPT_LOG_LEVEL:
			if (log_level_from_string(optarg) < 0)
				return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
						       "--log-level: \"%s\" is not one of debug, "
						       "info, warning, error",
						       optarg);
			level = optarg;
			break;
		case OPT_CONTROL_FD: {
			char *end;
			errno = 0;
			long v = strtol(optarg, &end, 10);
			if (errno || *end || v < 3 || v > INT_MAX)
				return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
						       "--control-fd: \"%s\" is not an fd number",
						       optarg);
			o->control_fd = (int)v;
			break;
		}
		case 'h':
		case OPT_HELP:
			o->show_help = true;
			break;
		case OPT_VERSION:
			o->show_version = true;
			break;
		case OPT_PRINT_PROFILE:
			o->print_profile = true;
			break;
		default:
			return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
					       "unknown or incomplete option \"%s\" (see --help)",
					       argv[optind - 1]);
		}
	}
	for (int i = optind; i < argc; i++)
		strv_push(&o->positional, argv[i]);
	if (o->show_help || o->show_version || o->print_profile)
		return 0;

	crisp_config_init_defaults(&o->config);
	r = crisp_config_load(&o->config, o->config_path, !o->config_given, err);
	if (r < 0)
		return r;

	if (root)
		crisp_config_set_string(&o->config.root, root);
	if (state) {
		crisp_config_set_state(&o->config, state);
		/* A moved state dir moves the default socket with it. */
		if (!listen) {
			_cleanup_free_ char *l = xasprintf("unix://%s/crisp.sock", state);
			crisp_config_set_string(&o->config.listen, l);
		}
	}
	if (listen)
		crisp_config_set_string(&o->config.listen, listen);
	if (level)
		crisp_config_set_string(&o->config.log_level, level);
	r = crisp_config_validate(&o->config, err);
	if (r < 0)
		return crisp_error_wrap(err, "after applying the command line");
	log_set_level(log_level_from_string(o->config.log_level));
	return 0;
}

void crisp_options_done(CrispOptions *o)
{
	crisp_config_done(&o->config);
	free(o->config_path);
	strv_free(o->positional);
	*o = (CrispOptions){ .control_fd = -1 };
}

char *crisp_state_path(const CrispConfig *c, const char *name)
{
	return xasprintf("%s/%s", c->state, name);
}

char *crisp_root_path(const CrispConfig *c, const char *name)
{
	return xasprintf("%s/%s", c->root, name);
}

const char *crisp_listen_path(const CrispConfig *c)
{
	return c->listen + strlen("unix://");
}

int crisp_mkdir_p(const char *dir, mode_t mode)
{
	_cleanup_free_ char *p = xstrdup(dir);

	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

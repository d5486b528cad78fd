/*
 * fuzz_config.c - the crisp.conf parser.
 *
 * The input is the text of one configuration file, loaded over the defaults
 * as crisp_config_load does for /etc/crisp/crisp.conf.  The file is written
 * by root, but a parser that crashes on a typo takes down every crisp
 * process at start, and the TOML subset has enough corners (quoting, escapes,
 * dotted tables, arrays) to be worth fuzzing.  Text stops at the first NUL,
 * as it does for the loader.
 *
 * Besides the sanitizers, the harness checks the contract: a failed load sets
 * an error and leaves the config released; a successful one sets none,
 * passes crisp_config_validate again, and exports as valid JSON.
 */
#include "config.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';

	CrispConfig c;
	CrispError *err = NULL;
	crisp_config_init_defaults(&c);
	int r = crisp_config_load_string(&c, "fuzz.conf", text, &err);
	if ((r < 0) != (err != NULL) || (err && !err->message))
		abort();
	if (r < 0 && (c.log_level || c.runtimes || c.n_runtimes || c.registry_hosts))
		abort(); /* a failed load releases the config */
	if (r >= 0) {
		if (crisp_config_validate(&c, &err) < 0)
			abort(); /* loading validated already */
		char *json = crisp_config_to_json(&c);
		json_t *j = json ? json_loads(json, 0, NULL) : NULL;
		if (!j)
			abort();
		json_decref(j);
		free(json);
	}
	crisp_config_done(&c);
	crisp_error_free(err);
	free(text);
	return 0;
}

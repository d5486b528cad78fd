/*
 * crisp-streamd - serves exec, attach and port-forward streams for crisp.
 */
#include "backend.h"
#include "streamd.h"

int main(int argc, char **argv)
{
	/* No database and no directory: streamd keeps its tokens in memory. */
	static const CrispBackendSpec spec = {
		.name = "crisp-streamd",
		.backend = CRISP__BACKEND__BACKEND_STREAMD,
		.profile = &streamd_profile,
	};
	return crisp_backend_main(&spec, argc, argv);
}

/*
 * cri_bench - latency and throughput of one unary CRI method, on gRPC C core.
 *
 * Keeps --concurrency calls in flight on one channel (one HTTP/2 connection,
 * as the kubelet has) and one completion queue: each call is a single batch
 * (send metadata, message and close; receive metadata, message and status),
 * and a new call starts as soon as one completes, until --requests calls are
 * done.  The latency of a call is from just before it is created to the
 * moment its completion is taken from the queue, so it includes this
 * client's own gRPC work, as a real client's would.
 *
 * Every call must end with the expected status (OK unless --expect-status):
 * a server that answers anything else is not benchmarked; the first such
 * answer is printed and the exit status is 1.
 */
#include "api.pb-c.h"

#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#define VERSION_METHOD "/runtime.v1.RuntimeService/Version"
#define LIST_CONTAINERS_METHOD "/runtime.v1.RuntimeService/ListContainers"
/* What kubelet sends in its VersionRequest. */
#define KUBELET_API_VERSION "0.1.0"
/* kubelet's limit, so a large answer (ListContainers) is not cut by us. */
#define MAX_MESSAGE (16 * 1024 * 1024)

typedef struct Options {
	const char *socket;
	const char *method;
	long requests;
	long concurrency;
	long warmup;
	long timeout_ms;
	grpc_status_code expect;
	const char *payload_hex;
	bool quiet;
} Options;

/* One call slot: at most --concurrency of them, reused call after call. */
typedef struct Slot {
	grpc_call *call;
	grpc_byte_buffer *request;
	grpc_metadata_array initial_md;
	grpc_metadata_array trailing_md;
	grpc_byte_buffer *response;
	grpc_status_code status;
	grpc_slice details;
	uint64_t start_ns;
	bool timed; /* false for warmup calls */
} Slot;

typedef struct Bench {
	Options opt;
	grpc_channel *channel;
	grpc_completion_queue *cq;
	void *registered; /* grpc_channel_register_call handle for the method */
	grpc_slice payload;
	Slot *slots;

	long started, finished; /* warmup calls included */
	uint64_t *latency_ns;	/* one per timed call, in completion order */
	long n_latency;
	long n_unexpected;
	bool stop; /* an unexpected status arrived: start no more calls */
	bool first_reported;
	bool response_checked;
	uint64_t timed_start_ns, timed_end_ns;
} Bench;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: cri_bench --socket PATH [--method /pkg.Service/Method] [--requests N]\n"
		   "                 [--concurrency C] [--warmup W] [--timeout-ms MS]\n"
		   "                 [--payload-hex HEX] [--expect-status CODE|NAME] [--quiet]\n"
		   "\n"
		   "Calls one unary method N times with C calls in flight on one connection and\n"
		   "prints latency percentiles (microseconds) and calls/s.  Without --payload-hex\n"
		   "the request is a VersionRequest{version: \"" KUBELET_API_VERSION
		   "\"} for Version\n"
		   "and an empty message otherwise.  Exits 1 if any call ends with a status other\n"
		   "than the expected one (OK by default), 2 on a usage error.\n"
		   "Defaults: --method " VERSION_METHOD " --requests 10000\n"
		   "          --concurrency 1 --warmup 200 --timeout-ms 10000\n");
}

static bool parse_long(const char *s, long min, long max, long *ret)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return false;
	*ret = v;
	return true;
}

/* gRPC status names, so that --expect-status and the report read as words. */
static const char *const status_names[] = {
	"OK",
	"CANCELLED",
	"UNKNOWN",
	"INVALID_ARGUMENT",
	"DEADLINE_EXCEEDED",
	"NOT_FOUND",
	"ALREADY_EXISTS",
	"PERMISSION_DENIED",
	"RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION",
	"ABORTED",
	"OUT_OF_RANGE",
	"UNIMPLEMENTED",
	"INTERNAL",
	"UNAVAILABLE",
	"DATA_LOSS",
	"UNAUTHENTICATED",
};
#define N_STATUS_NAMES ((long)(sizeof(status_names) / sizeof(status_names[0])))

static const char *status_name(grpc_status_code code)
{
	if ((long)code >= 0 && (long)code < N_STATUS_NAMES)
		return status_names[code];
	return "?";
}

static bool parse_status(const char *s, grpc_status_code *ret)
{
	long v;
	if (parse_long(s, 0, N_STATUS_NAMES - 1, &v)) {
		*ret = (grpc_status_code)v;
		return true;
	}
	for (long i = 0; i < N_STATUS_NAMES; i++) {
		if (strcmp(s, status_names[i]) == 0) {
			*ret = (grpc_status_code)i;
			return true;
		}
	}
	return false;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool payload_from_hex(const char *hex, grpc_slice *ret)
{
	size_t n = strlen(hex);
	if (n % 2)
		return false;
	grpc_slice s = grpc_slice_malloc(n / 2);
	uint8_t *p = GRPC_SLICE_START_PTR(s);
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			grpc_slice_unref(s);
			return false;
		}
		p[i] = (uint8_t)(hi << 4 | lo);
	}
	*ret = s;
	return true;
}

static grpc_slice pack_message(const ProtobufCMessage *m)
{
	grpc_slice s = grpc_slice_malloc(protobuf_c_message_get_packed_size(m));
	protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
	return s;
}

/* The request when none is given: built from the CRI types, so it is what a
 * real client would send for the two methods the bench knows. */
static grpc_slice builtin_payload(const char *method, const char **what)
{
	if (strcmp(method, VERSION_METHOD) == 0) {
		Runtime__V1__VersionRequest req;
		runtime__v1__version_request__init(&req);
		req.version = (char *)KUBELET_API_VERSION;
		*what = "VersionRequest{version: \"" KUBELET_API_VERSION "\"}";
		return pack_message(&req.base);
	}
	if (strcmp(method, LIST_CONTAINERS_METHOD) == 0) {
		Runtime__V1__ListContainersRequest req;
		runtime__v1__list_containers_request__init(&req);
		*what = "ListContainersRequest{} (no filter)";
		return pack_message(&req.base);
	}
	/* Zero bytes decode as the empty message of any proto3 type. */
	*what = "empty message (0 bytes)";
	return grpc_empty_slice();
}

static int parse_options(int argc, char **argv, Options *o)
{
	*o = (Options){ .method = VERSION_METHOD,
			.requests = 10000,
			.concurrency = 1,
			.warmup = 200,
			.timeout_ms = 10000,
			.expect = GRPC_STATUS_OK };

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		if (strcmp(a, "--quiet") == 0) {
			o->quiet = true;
			continue;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "cri_bench: %s needs a value\n", a);
			return -1;
		}
		const char *v = argv[++i];
		bool ok = true;
		if (strcmp(a, "--socket") == 0)
			o->socket = v;
		else if (strcmp(a, "--method") == 0)
			o->method = v;
		else if (strcmp(a, "--payload-hex") == 0)
			o->payload_hex = v;
		else if (strcmp(a, "--requests") == 0)
			ok = parse_long(v, 1, 100000000, &o->requests);
		else if (strcmp(a, "--concurrency") == 0)
			ok = parse_long(v, 1, 10000, &o->concurrency);
		else if (strcmp(a, "--warmup") == 0)
			ok = parse_long(v, 0, 100000000, &o->warmup);
		else if (strcmp(a, "--timeout-ms") == 0)
			ok = parse_long(v, 1, 3600000, &o->timeout_ms);
		else if (strcmp(a, "--expect-status") == 0)
			ok = parse_status(v, &o->expect);
		else {
			fprintf(stderr, "cri_bench: unknown option %s\n", a);
			return -1;
		}
		if (!ok) {
			fprintf(stderr, "cri_bench: bad value for %s: %s\n", a, v);
			return -1;
		}
	}
	if (!o->socket) {
		fprintf(stderr, "cri_bench: --socket is required\n");
		return -1;
	}
	if (o->method[0] != '/' || !strchr(o->method + 1, '/')) {
		fprintf(stderr, "cri_bench: --method must look like /package.Service/Method\n");
		return -1;
	}
	return 0;
}

static void start_call(Bench *b, Slot *s)
{
	grpc_op ops[6];
	memset(ops, 0, sizeof(ops));

	/* Counted as timed if it starts after the warmup calls: those are the
	 * first --warmup calls started, whatever order they finish in. */
	s->timed = b->started >= b->opt.warmup;
	if (s->timed && b->started == b->opt.warmup)
		b->timed_start_ns = now_ns();
	b->started++;

	grpc_metadata_array_init(&s->initial_md);
	grpc_metadata_array_init(&s->trailing_md);
	s->response = NULL;
	s->details = grpc_empty_slice();
	s->status = GRPC_STATUS_UNKNOWN;
	/* The call takes the slices of the message it sends: a new buffer each time. */
	s->request = grpc_raw_byte_buffer_create(&b->payload, 1);

	s->start_ns = now_ns();
	gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
					     gpr_time_from_millis(b->opt.timeout_ms, GPR_TIMESPAN));
	s->call = grpc_channel_create_registered_call(b->channel, NULL, GRPC_PROPAGATE_DEFAULTS,
						      b->cq, b->registered, deadline, NULL);

	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = s->request;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->initial_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &s->response;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &s->trailing_md;
	ops[5].data.recv_status_on_client.status = &s->status;
	ops[5].data.recv_status_on_client.status_details = &s->details;

	grpc_call_error e = grpc_call_start_batch(s->call, ops, 6, s, NULL);
	if (e != GRPC_CALL_OK) {
		/* Only a bug here can cause this: there is no completion to wait for. */
		fprintf(stderr, "cri_bench: grpc_call_start_batch: %s\n",
			grpc_call_error_to_string(e));
		exit(1);
	}
}

/* Decodes the first Version answer, so a server answering OK with garbage
 * (or the wrong message) is caught rather than measured. */
static bool check_response(Bench *b, Slot *s)
{
	if (!s->response) {
		fprintf(stderr, "cri_bench: %s answered OK without a message\n", b->opt.method);
		return false;
	}
	if (b->response_checked || strcmp(b->opt.method, VERSION_METHOD) != 0)
		return true;
	b->response_checked = true;

	grpc_byte_buffer_reader reader;
	if (!grpc_byte_buffer_reader_init(&reader, s->response))
		return false;
	grpc_slice raw = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	Runtime__V1__VersionResponse *v = runtime__v1__version_response__unpack(
		NULL, GRPC_SLICE_LENGTH(raw), GRPC_SLICE_START_PTR(raw));
	grpc_slice_unref(raw);
	if (!v) {
		fprintf(stderr, "cri_bench: the Version answer is not a VersionResponse\n");
		return false;
	}
	if (!b->opt.quiet)
		printf("server      %s %s (CRI %s, kubelet API %s)\n", v->runtime_name,
		       v->runtime_version, v->runtime_api_version, v->version);
	runtime__v1__version_response__free_unpacked(v, NULL);
	return true;
}

static void end_call(Bench *b, Slot *s)
{
	uint64_t end = now_ns();
	b->finished++;

	bool expected = s->status == b->opt.expect;
	if (expected && s->status == GRPC_STATUS_OK && !check_response(b, s))
		expected = false;
	if (!expected) {
		b->n_unexpected++;
		b->stop = true;
		if (!b->first_reported) {
			char *details = grpc_slice_to_c_string(s->details);
			fprintf(stderr, "cri_bench: %s: status %d %s: %s (expected %s)\n",
				b->opt.method, (int)s->status, status_name(s->status),
				details && *details ? details : "(no details)",
				status_name(b->opt.expect));
			gpr_free(details);
			b->first_reported = true;
		}
	} else if (s->timed) {
		b->latency_ns[b->n_latency++] = end - s->start_ns;
		b->timed_end_ns = end;
	}

	grpc_metadata_array_destroy(&s->initial_md);
	grpc_metadata_array_destroy(&s->trailing_md);
	if (s->response)
		grpc_byte_buffer_destroy(s->response);
	grpc_byte_buffer_destroy(s->request);
	grpc_slice_unref(s->details);
	grpc_call_unref(s->call);
	s->call = NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted values, in microseconds. */
static double percentile_us(const uint64_t *sorted, long n, double p)
{
	long rank = (long)(p / 100.0 * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return (double)sorted[rank - 1] / 1000.0;
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void report(const Bench *b, double client_cpu)
{
	const Options *o = &b->opt;
	long n = b->n_latency;
	double secs = (double)(b->timed_end_ns - b->timed_start_ns) / 1e9;
	double rate = secs > 0 ? (double)n / secs : 0;
	double p50 = percentile_us(b->latency_ns, n, 50);
	double p90 = percentile_us(b->latency_ns, n, 90);
	double p99 = percentile_us(b->latency_ns, n, 99);
	double max = (double)b->latency_ns[n - 1] / 1000.0;

	if (!o->quiet) {
		printf("calls       %ld timed, concurrency %ld, after %ld warmup calls\n", n,
		       o->concurrency, o->warmup);
		printf("status      %ld %s, %ld unexpected\n", n, status_name(o->expect),
		       b->n_unexpected);
		printf("latency_us  p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n", p50, p90, p99, max);
		printf("throughput  %.0f calls/s (%.3f s)\n", rate, secs);
		printf("client_cpu  %.1f us/call (this process, user+sys)\n",
		       n ? client_cpu * 1e6 / (double)n : 0.0);
	}
	/* One line for scripts: key=value, no spaces in values. */
	printf("RESULT method=%s concurrency=%ld requests=%ld total=%ld status=%s unexpected=%ld "
	       "p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f calls_per_s=%.0f "
	       "client_cpu_us_per_call=%.1f\n",
	       o->method, o->concurrency, n, b->finished, status_name(o->expect), b->n_unexpected,
	       p50, p90, p99, max, rate, n ? client_cpu * 1e6 / (double)n : 0.0);
}

int main(int argc, char **argv)
{
	Bench b;
	memset(&b, 0, sizeof(b));
	if (parse_options(argc, argv, &b.opt) < 0) {
		usage(stderr);
		return 2;
	}
	const Options *o = &b.opt;

	/* gRPC would only say UNAVAILABLE; name the actual problem. */
	struct stat st;
	errno = 0;
	if (stat(o->socket, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "cri_bench: %s is not a socket: %s\n", o->socket,
			errno ? strerror(errno) : "wrong file type");
		return 1;
	}

	const char *what = "--payload-hex";
	if (o->payload_hex) {
		if (!payload_from_hex(o->payload_hex, &b.payload)) {
			fprintf(stderr,
				"cri_bench: --payload-hex is not an even count of hex digits\n");
			return 2;
		}
	} else {
		b.payload = builtin_payload(o->method, &what);
	}

	grpc_init();
	char *target = malloc(strlen(o->socket) + sizeof("unix://"));
	if (!target)
		abort();
	sprintf(target, "unix://%s", o->socket);
	grpc_arg args[] = {
		{ .type = GRPC_ARG_INTEGER,
		  .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
		  .value.integer = MAX_MESSAGE },
		{ .type = GRPC_ARG_INTEGER,
		  .key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
		  .value.integer = MAX_MESSAGE },
	};
	grpc_channel_args cargs = { .num_args = 2, .args = args };
	grpc_channel_credentials *creds = grpc_insecure_credentials_create();
	b.channel = grpc_channel_create(target, creds, &cargs);
	grpc_channel_credentials_release(creds);
	b.cq = grpc_completion_queue_create_for_next(NULL);
	/* Registered, as generated stubs do: the method path is interned once,
	 * not per call. */
	b.registered = grpc_channel_register_call(b.channel, o->method, NULL, NULL);

	b.slots = calloc((size_t)o->concurrency, sizeof(Slot));
	b.latency_ns = calloc((size_t)o->requests, sizeof(uint64_t));
	if (!b.slots || !b.latency_ns)
		abort();

	if (!o->quiet) {
		printf("target      %s\n", target);
		printf("method      %s\n", o->method);
		printf("request     %s, %zu bytes\n", what, GRPC_SLICE_LENGTH(b.payload));
	}
	fflush(stdout);

	long total = o->warmup + o->requests;
	long initial = o->concurrency < total ? o->concurrency : total;
	double cpu0 = 0;
	bool cpu_started = false;
	for (long i = 0; i < initial; i++)
		start_call(&b, &b.slots[i]);
	long in_flight = initial;

	while (in_flight > 0) {
		grpc_event ev =
			grpc_completion_queue_next(b.cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		if (ev.type != GRPC_OP_COMPLETE) {
			fprintf(stderr, "cri_bench: unexpected completion queue event %d\n",
				(int)ev.type);
			return 1;
		}
		Slot *s = ev.tag;
		/* A client batch with RECV_STATUS always completes with success: the
		 * outcome is in the status, failed or not. */
		end_call(&b, s);
		in_flight--;
		if (!cpu_started && b.finished >= o->warmup) {
			cpu0 = cpu_seconds();
			cpu_started = true;
		}
		if (!b.stop && b.started < total) {
			start_call(&b, s);
			in_flight++;
		}
	}
	double client_cpu = cpu_seconds() - cpu0;

	int rc = 0;
	if (b.n_unexpected > 0) {
		fprintf(stderr,
			"cri_bench: %ld of %ld calls to %s did not end with %s: not benchmarked\n",
			b.n_unexpected, b.finished, o->method, status_name(o->expect));
		printf("RESULT method=%s concurrency=%ld status=FAILED unexpected=%ld\n", o->method,
		       o->concurrency, b.n_unexpected);
		rc = 1;
	} else {
		qsort(b.latency_ns, (size_t)b.n_latency, sizeof(uint64_t), cmp_u64);
		report(&b, client_cpu);
	}

	grpc_channel_destroy(b.channel);
	grpc_completion_queue_shutdown(b.cq);
	while (grpc_completion_queue_next(b.cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(b.cq);
	grpc_slice_unref(b.payload);
	free(b.slots);
	free(b.latency_ns);
	free(target);
	grpc_shutdown();
	return rc;
}

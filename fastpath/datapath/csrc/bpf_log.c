/* Routes libbpf's and libxdp's messages into greguard's log.
 *
 * Both libraries print through a callback taking a printf format and a va_list, which stable
 * Rust cannot take apart; this shim formats the message and hands Rust a plain string.
 * The prototypes are declared here rather than taken from the libraries' headers: both print
 * levels are C enums (int-sized), WARN = 0, INFO = 1, DEBUG = 2.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*greguard_print_fn)(int level, const char *format, va_list args);

extern greguard_print_fn libbpf_set_print(greguard_print_fn fn);
extern greguard_print_fn libxdp_set_print(greguard_print_fn fn);

/* Implemented in Rust (datapath::log). source: 0 = libbpf, 1 = libxdp. */
extern void greguard_bpf_log(int source, int level, const char *message);

static void forward(int source, int level, const char *format, va_list args)
{
	/* Short messages format on the stack; a long one (a verifier log runs to kilobytes, and
	 * its last lines say why a program was refused) gets a buffer of its size. */
	char small[512];
	va_list again;
	va_copy(again, args);
	int n = vsnprintf(small, sizeof(small), format, args);
	char *message = small;
	if (n >= (int)sizeof(small)) {
		message = malloc((size_t)n + 1);
		if (message)
			vsnprintf(message, (size_t)n + 1, format, again);
		else
			message = small;
	}
	va_end(again);
	if (n < 0)
		return;
	size_t len = strlen(message);
	/* Drop the trailing newline both libraries put on their messages. */
	if (len > 0 && message[len - 1] == '\n')
		message[len - 1] = '\0';
	greguard_bpf_log(source, level, message);
	if (message != small)
		free(message);
}

static int libbpf_print(int level, const char *format, va_list args)
{
	forward(0, level, format, args);
	return 0;
}

static int libxdp_print(int level, const char *format, va_list args)
{
	forward(1, level, format, args);
	return 0;
}

void greguard_route_bpf_logs(void)
{
	libbpf_set_print(libbpf_print);
	libxdp_set_print(libxdp_print);
}

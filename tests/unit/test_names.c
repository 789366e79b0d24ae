// SPDX-License-Identifier: MIT
/* Kernel numbers to label strings (src/daemon/names.c): syscalls, errnos,
 * reset reasons from the running kernel's BTF, TcpExt field names. */
#include <errno.h>
#include <string.h>
#include "names.h"
#include "unit.h"

UNIT_TEST(test_syscalls_and_errnos)
{
	CHECK(!strcmp(names_syscall(CS_SYS_ACCEPT4), "accept4"));
	CHECK(!strcmp(names_syscall(CS_SYS_MAX), "unknown"));
	for (int i = 0; i < CS_SYS_MAX; i++)
		CHECK(names_syscall(i) && strcmp(names_syscall(i), "unknown"));
	CHECK(!strcmp(names_errno(EMFILE), "EMFILE"));
	CHECK(!strcmp(names_errno(ENFILE), "ENFILE"));
	CHECK(!strcmp(names_errno(1000), "EUNKNOWN"));
}

/* Reason 0 is "not_specified" with or without the kernel's enum; without
 * it a passive reset has a label of connscope's. */
UNIT_TEST(test_reset_reasons)
{
	CHECK(!names_init());
	CHECK(!strcmp(names_rst_reason(0), "not_specified"));
	CHECK(names_rst_reason(CS_RST_REASONS_MAX) == NULL);
	/* passive_reset is connscope's label where the kernel names none */
	if (names_rst_reason_index("tcp_abort_on_close") >= 0)
		CHECK(names_rst_reason(CS_RST_PASSIVE_BEFORE_6_10) == NULL);
	else
		CHECK(!strcmp(names_rst_reason(CS_RST_PASSIVE_BEFORE_6_10), "passive_reset"));
	CHECK(names_rst_reason_index("no_such_reason") == -1);
}

UNIT_TEST(test_tcp_ext_names)
{
	CHECK(!strcmp(names_tcp_ext(CS_TE_LISTEN_OVERFLOWS), "ListenOverflows"));
	for (int i = 0; i < CS_TE_MAX; i++)
		CHECK(names_tcp_ext(i) && strcmp(names_tcp_ext(i), "unknown"));
}

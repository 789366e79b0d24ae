// SPDX-License-Identifier: MIT
/* Address parsing and formatting shared by the three programs
 * (src/common/netutil.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include "netutil.h"
#include "unit.h"

UNIT_TEST(test_parse_hostport)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

	CHECK(!net_parse_hostport("t", "127.0.0.1:80", &ss, &len));
	CHECK(ss.ss_family == AF_INET && ntohs(s4->sin_port) == 80 && len == sizeof(*s4));
	CHECK(!net_parse_hostport("t", "[::1]:9477", &ss, &len));
	CHECK(ss.ss_family == AF_INET6 && ntohs(s6->sin6_port) == 9477);
	unit_stderr(0); /* each bad address prints its one line */
	CHECK(net_parse_hostport("t", "127.0.0.1", &ss, &len) == -EINVAL);
	CHECK(net_parse_hostport("t", "127.0.0.1:70000", &ss, &len) == -EINVAL);
	CHECK(net_parse_hostport("t", "999.1.1.1:80", &ss, &len) == -EINVAL);
	CHECK(net_parse_hostport("t", "[::1:80", &ss, &len) == -EINVAL);
	unit_stderr(1);
}

UNIT_TEST(test_format_addr)
{
	struct in_addr a4;
	struct in6_addr a6;
	char buf[64];

	inet_pton(AF_INET, "10.1.2.3", &a4);
	net_format_addr(AF_INET, &a4, 8080, buf, sizeof(buf));
	CHECK(!strcmp(buf, "10.1.2.3:8080"));
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &a6);
	net_format_addr(AF_INET6, &a6, 443, buf, sizeof(buf));
	CHECK(!strcmp(buf, "[::ffff:127.0.0.1]:443"));
}

/* SPDX-License-Identifier: MIT */
/* --web-config FILE: TLS and basic auth from the YAML file Prometheus'
 * exporter-toolkit reads (--web.config.file), so existing files work as-is. */
#ifndef CS_WEBCONFIG_H
#define CS_WEBCONFIG_H
#include <stdbool.h>

/* exporter-toolkit's client_auth_type values. */
enum webconfig_client_auth {
	WEBCONFIG_NO_CLIENT_CERT,
	WEBCONFIG_REQUEST_CLIENT_CERT,
	WEBCONFIG_REQUIRE_ANY_CLIENT_CERT,
	WEBCONFIG_VERIFY_CLIENT_CERT_IF_GIVEN,
	WEBCONFIG_REQUIRE_AND_VERIFY_CLIENT_CERT,
};

struct webconfig_user {
	char *name;
	char *hash; /* crypt(3) hash: bcrypt $2y$/$2b$/$2a$ */
	char *verified; /* the last password that matched, so bcrypt runs once per password */
};

struct webconfig {
	char *cert_pem, *key_pem, *client_ca_pem; /* file contents; NULL: no TLS */
	enum webconfig_client_auth client_auth;
	const char *priorities; /* GnuTLS priority string from min_version */
	struct webconfig_user *users;
	int nusers;
};

/* Reads and checks path; prints what is wrong (key, file) and returns -errno. */
int webconfig_new(const char *path, struct webconfig **out);
void webconfig_free(struct webconfig *wc);
/* Whether user/password match a basic_auth_users entry. Not thread-safe:
 * the HTTP thread alone calls it. */
bool webconfig_check_user(struct webconfig *wc, const char *user, const char *password);
#endif

// SPDX-License-Identifier: MIT
/* Reads exporter-toolkit's web config (tls_server_config, basic_auth_users)
 * with libyaml, and checks basic-auth passwords with crypt(3) (libxcrypt's
 * bcrypt). Unknown keys are errors, as in exporter-toolkit: a setting we would
 * silently skip (client_allowed_sans) would weaken what the file promises. */
#define _GNU_SOURCE
#include "webconfig.h"
#include <crypt.h>
#include <errno.h>
#include "errmsg.h"
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* A certificate chain or key bigger than this is not one. */
#define WEBCONFIG_MAX_FILE_BYTES (1024 * 1024)

static const char *const client_auth_names[] = {
	[WEBCONFIG_NO_CLIENT_CERT] = "NoClientCert",
	[WEBCONFIG_REQUEST_CLIENT_CERT] = "RequestClientCert",
	[WEBCONFIG_REQUIRE_ANY_CLIENT_CERT] = "RequireAnyClientCert",
	[WEBCONFIG_VERIFY_CLIENT_CERT_IF_GIVEN] = "VerifyClientCertIfGiven",
	[WEBCONFIG_REQUIRE_AND_VERIFY_CLIENT_CERT] = "RequireAndVerifyClientCert",
};

static const struct {
	const char *name, *priorities;
} tls_versions[] = {
	{ "TLS10", "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:+VERS-TLS1.1:+VERS-TLS1.0" },
	{ "TLS11", "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:+VERS-TLS1.1" },
	{ "TLS12", "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2" },
	{ "TLS13", "NORMAL:-VERS-ALL:+VERS-TLS1.3" },
};

/* Relative paths are relative to the config file, as in exporter-toolkit. */
static int read_file(const char *cfg, const char *key, const char *name, char **out)
{
	char *dir = NULL, *path = NULL, *buf = NULL;
	size_t len = 0;
	FILE *f = NULL;
	int err = 0;

	if (name[0] == '/') {
		path = strdup(name);
	} else {
		dir = strdup(cfg);
		if (dir && asprintf(&path, "%s/%s", dirname(dir), name) < 0)
			path = NULL;
	}
	if (!path) {
		err = -ENOMEM;
		goto cleanup;
	}
	f = fopen(path, "re");
	buf = malloc(WEBCONFIG_MAX_FILE_BYTES + 1);
	if (!f || !buf) {
		err = f ? -ENOMEM : -errno;
		errmsg(0, "%s: %s %s: %s", cfg, key, path, strerror(-err));
		goto cleanup;
	}
	len = fread(buf, 1, WEBCONFIG_MAX_FILE_BYTES + 1, f);
	if (len == 0 || len > WEBCONFIG_MAX_FILE_BYTES) {
		err = -EINVAL;
		errmsg(0, "%s: %s %s is %s", cfg, key, path,
			len ? "over 1 MiB" : "empty");
		goto cleanup;
	}
	buf[len] = 0;
	*out = buf;
	buf = NULL;
cleanup:
	if (f)
		fclose(f);
	free(buf);
	free(path);
	free(dir);
	return err;
}

static const char *scalar(yaml_document_t *doc, yaml_node_t *n)
{
	(void)doc;
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int bad(const char *cfg, const char *what, const char *key)
{
	return errmsg(-EINVAL, "%s: %s%s%s", cfg, what, key ? " " : "", key ? key : "");
}

static int parse_tls(const char *cfg, yaml_document_t *doc, yaml_node_t *map, struct webconfig *wc)
{
	const char *cert = NULL, *key = NULL, *ca = NULL, *auth = NULL, *minv = "TLS12";
	yaml_node_pair_t *p;
	size_t i;
	int err;

	if (map->type != YAML_MAPPING_NODE)
		return bad(cfg, "tls_server_config must be a mapping", NULL);
	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		const char *k = scalar(doc, yaml_document_get_node(doc, p->key));
		const char *v = scalar(doc, yaml_document_get_node(doc, p->value));

		static const char *const known[] = { "cert_file", "key_file", "client_ca_file",
						     "client_auth_type", "min_version",
						     "prefer_server_cipher_suites" };
		size_t j;

		for (j = 0; k && j < sizeof(known) / sizeof(known[0]) && strcmp(k, known[j]); j++)
			;
		if (!k || j == sizeof(known) / sizeof(known[0]))
			return bad(cfg, "tls_server_config: unsupported key", k ? k : "(not a scalar)");
		if (!v)
			return bad(cfg, "tls_server_config: expected a string for", k);
		if (!strcmp(k, "cert_file"))
			cert = v;
		else if (!strcmp(k, "key_file"))
			key = v;
		else if (!strcmp(k, "client_ca_file"))
			ca = v;
		else if (!strcmp(k, "client_auth_type"))
			auth = v;
		else if (!strcmp(k, "min_version"))
			minv = v;
		/* prefer_server_cipher_suites: GnuTLS's NORMAL priorities already prefer ours */
	}
	if (!cert || !key)
		return bad(cfg, "tls_server_config needs cert_file and key_file", NULL);
	wc->priorities = NULL;
	for (i = 0; i < sizeof(tls_versions) / sizeof(tls_versions[0]); i++)
		if (!strcmp(minv, tls_versions[i].name))
			wc->priorities = tls_versions[i].priorities;
	if (!wc->priorities)
		return bad(cfg, "min_version: expected TLS10, TLS11, TLS12 or TLS13, got", minv);
	wc->client_auth = WEBCONFIG_NO_CLIENT_CERT;
	if (auth) {
		for (i = 0; i < sizeof(client_auth_names) / sizeof(client_auth_names[0]); i++)
			if (!strcmp(auth, client_auth_names[i]))
				break;
		if (i == sizeof(client_auth_names) / sizeof(client_auth_names[0]))
			return bad(cfg, "client_auth_type: expected NoClientCert, RequestClientCert, "
				   "RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert, got", auth);
		wc->client_auth = i;
	}
	/* libmicrohttpd asks for a client certificate only when it has a CA to send */
	if (wc->client_auth != WEBCONFIG_NO_CLIENT_CERT && !ca)
		return bad(cfg, "client_auth_type needs client_ca_file:", auth);
	err = read_file(cfg, "cert_file", cert, &wc->cert_pem);
	if (!err)
		err = read_file(cfg, "key_file", key, &wc->key_pem);
	if (!err && ca)
		err = read_file(cfg, "client_ca_file", ca, &wc->client_ca_pem);
	return err;
}

static int parse_users(const char *cfg, yaml_document_t *doc, yaml_node_t *map, struct webconfig *wc)
{
	size_t n = map->type == YAML_MAPPING_NODE ? map->data.mapping.pairs.top - map->data.mapping.pairs.start : 0;
	yaml_node_pair_t *p;

	if (map->type != YAML_MAPPING_NODE)
		return bad(cfg, "basic_auth_users must be a mapping of name: bcrypt hash", NULL);
	wc->users = calloc(n ? n : 1, sizeof(*wc->users));
	if (!wc->users)
		return -ENOMEM;
	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		const char *k = scalar(doc, yaml_document_get_node(doc, p->key));
		const char *v = scalar(doc, yaml_document_get_node(doc, p->value));
		struct webconfig_user *u = &wc->users[wc->nusers];

		if (!k || !v)
			return bad(cfg, "basic_auth_users: expected name: hash, got", k);
		if (strncmp(v, "$2y$", 4) && strncmp(v, "$2b$", 4) && strncmp(v, "$2a$", 4))
			return bad(cfg, "basic_auth_users: expected a bcrypt hash ($2y$...) for", k);
		u->name = strdup(k);
		u->hash = strdup(v);
		if (!u->name || !u->hash)
			return -ENOMEM;
		wc->nusers++;
	}
	return 0;
}

int webconfig_new(const char *path, struct webconfig **out)
{
	struct webconfig *wc = calloc(1, sizeof(*wc));
	yaml_parser_t parser;
	yaml_document_t doc;
	bool have_doc = false;
	yaml_node_t *root;
	yaml_node_pair_t *p;
	FILE *f = NULL;
	int err = 0;

	if (!wc)
		return -ENOMEM;
	yaml_parser_initialize(&parser);
	f = fopen(path, "re");
	if (!f) {
		err = -errno;
		errmsg(0, "--web-config %s: %s", path, strerror(-err));
		goto cleanup;
	}
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		errmsg(0, "%s:%zu: %s", path, parser.problem_mark.line + 1,
			parser.problem ? parser.problem : "not YAML");
		err = -EINVAL;
		goto cleanup;
	}
	have_doc = true;
	root = yaml_document_get_root_node(&doc);
	if (!root) /* an empty file: plain HTTP, as exporter-toolkit */
		goto cleanup;
	if (root->type != YAML_MAPPING_NODE) {
		err = bad(path, "expected a mapping with tls_server_config and basic_auth_users", NULL);
		goto cleanup;
	}
	for (p = root->data.mapping.pairs.start; !err && p < root->data.mapping.pairs.top; p++) {
		const char *k = scalar(&doc, yaml_document_get_node(&doc, p->key));
		yaml_node_t *v = yaml_document_get_node(&doc, p->value);

		if (k && !strcmp(k, "tls_server_config"))
			err = parse_tls(path, &doc, v, wc);
		else if (k && !strcmp(k, "basic_auth_users"))
			err = parse_users(path, &doc, v, wc);
		else
			err = bad(path, "unsupported key", k ? k : "(not a scalar)");
	}
cleanup:
	if (have_doc)
		yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (f)
		fclose(f);
	if (err) {
		webconfig_free(wc);
		return err;
	}
	*out = wc;
	return 0;
}

void webconfig_free(struct webconfig *wc)
{
	int i;

	if (!wc)
		return;
	for (i = 0; i < wc->nusers; i++) {
		free(wc->users[i].name);
		free(wc->users[i].hash);
		free(wc->users[i].verified);
	}
	free(wc->users);
	free(wc->cert_pem);
	free(wc->key_pem);
	free(wc->client_ca_pem);
	free(wc);
}

/* Equal strings, in time that depends on their lengths only. */
static bool same(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i;
	unsigned char d = la != lb;

	for (i = 0; i < la && i < lb; i++)
		d |= (unsigned char)a[i] ^ (unsigned char)b[i];
	return !d;
}

bool webconfig_check_user(struct webconfig *wc, const char *user, const char *password)
{
	static struct crypt_data cd;
	struct webconfig_user *u = NULL;
	const char *h;
	int i;

	for (i = 0; i < wc->nusers; i++)
		if (!strcmp(wc->users[i].name, user))
			u = &wc->users[i];
	if (!u)
		return false;
	if (u->verified && same(u->verified, password))
		return true;
	h = crypt_r(password, u->hash, &cd);
	if (!h || !same(h, u->hash))
		return false;
	free(u->verified);
	u->verified = strdup(password);
	return true;
}

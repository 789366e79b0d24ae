// SPDX-License-Identifier: MIT
/* JSON rendering of the diagnosis and history (src/daemon/json.c). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include "diagnose.h"
#include "json.h"
#include "unit.h"

UNIT_TEST(test_json)
{
	struct cs_snapshot *s = unit_snapshot();
	struct cs_diagnosis *d = malloc(sizeof(*d));
	struct cs_point pt = { .seconds = 2, .accepts = 5, .target_up = true };
	cJSON *root;
	char *text;

	diagnose(s, &pt, 1, d);
	text = json_diagnosis(d);
	root = cJSON_Parse(text);
	CHECK(root && !strcmp(cJSON_GetObjectItem(root, "verdict")->valuestring, "healthy"));
	CHECK(root && cJSON_GetObjectItem(root, "window_seconds")->valuedouble == 2);
	CHECK(root && cJSON_GetArraySize(cJSON_GetObjectItem(root, "causes")) == 1);
	cJSON_Delete(root);
	free(text);
	text = json_history(&pt, 1);
	root = cJSON_Parse(text);
	CHECK(root && cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "points"), 0),
					  "accepts")->valuedouble == 5);
	cJSON_Delete(root);
	free(text);
	free(s);
	free(d);
}

/* spx_hfconfig_int.h: helpers shared by the config.json readers (spx_hfconfig.c for the Llama
 * family, spx_hfconfig_gpt.c for GPT-2, GPT-NeoX and OPT). Internal to convert/. Every getter
 * treats an absent key and JSON null alike ("use the default") and names key and file in its
 * SPX_E_CONFIG message. */
#ifndef SPX_HFCONFIG_INT_H
#define SPX_HFCONFIG_INT_H

#include <cjson/cJSON.h>

#include "spx_hfconfig.h"

/* obj[key], or NULL when absent or null. */
const cJSON *spx_hfc_field(const cJSON *obj, const char *key);
int spx_hfc_u32(spx_ctx *ctx, const cJSON *obj, const char *key, int required, uint32_t def, const char *label,
                uint32_t *out);
int spx_hfc_f32(spx_ctx *ctx, const cJSON *obj, const char *key, int required, float def, const char *label,
                float *out);
int spx_hfc_bool(spx_ctx *ctx, const cJSON *obj, const char *key, int def, const char *label, int *out);
/* Integer, list (first id; *was_list = 1) or null (-1). was_list may be NULL. */
int spx_hfc_token_id(spx_ctx *ctx, const cJSON *obj, const char *key, const char *label, int32_t *out,
                     int *was_list);
/* rope_scaling object -> c->rope_scaling and its parameters. */
int spx_hfc_rope(spx_ctx *ctx, const cJSON *rs, const char *label, spx_model_config *c);

/* Family readers, called after model_type was recognised; h->cfg starts from
 * spx_config_init_llama and h->model_type is set. The caller validates the result. */
int spx_hfc_parse_gpt2(spx_ctx *ctx, const cJSON *root, const char *label, spx_hfconfig *h);
int spx_hfc_parse_neox(spx_ctx *ctx, const cJSON *root, const char *label, spx_hfconfig *h);
int spx_hfc_parse_opt(spx_ctx *ctx, const cJSON *root, const char *label, spx_hfconfig *h);

#endif

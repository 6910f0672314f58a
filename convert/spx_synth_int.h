/* spx_synth_int.h: the tensor plan shared by spx_synth.c (Llama, planted clusters) and
 * spx_synth_arch.c (GPT-2, GPT-NeoX, OPT). Internal to convert/. */
#ifndef SPX_SYNTH_INT_H
#define SPX_SYNTH_INT_H

#include <cjson/cJSON.h>

#include "spx_st_write.h"
#include "spx_synth.h"

typedef enum tkind {
    T_EMBED, T_LM_HEAD, T_NORM, T_NORM_FINAL, T_QK, T_V, T_O, T_GATE, T_UP, T_DOWN,
    T_RAND                   /* mean + std * N(0, 1) per element (plan_item.mean/std) */
} tkind;

typedef struct plan_item {
    char name[96];
    tkind kind;
    double mean, std;        /* T_RAND only */
    uint64_t rows, cols;     /* 1-D tensors: rows 1 */
} plan_item;

typedef struct synth {
    const spx_synth_opts *o;
    float *centers;          /* [K, dim] */
    plan_item *items;
    spx_st_spec *specs;
    size_t n, cap;
    float *row;              /* [max cols] */
    unsigned char *bytes;    /* [max cols * 4] */
    size_t max_cols;
    uint64_t n_params;
} synth;

/* Append a tensor (SPX_E_INTERNAL when the plan's capacity is exceeded). */
int spx_synth_plan_add(spx_ctx *ctx, synth *s, const char *name, tkind kind, uint64_t rows, uint64_t cols, int is_1d);
/* Plan of a gpt2 / gpt_neox / opt checkpoint (allocates s->items and s->specs). */
int spx_synth_plan_other(spx_ctx *ctx, synth *s);
/* config.json fields of a gpt2 / gpt_neox / opt checkpoint (cJSON allocation failures surface as
 * missing keys, checked by the caller through cJSON_Print). */
void spx_synth_config_other(const spx_synth_opts *o, cJSON *root);

#endif

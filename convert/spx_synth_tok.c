/* spx_synth_tok.c: deterministic SentencePiece-style BPE tokenizer.json for synthetic models.
 *
 * Layout follows the Llama/stories260K tokenizer.json: normalizer Prepend("▁") + Replace(" ","▁"),
 * no pre-tokenizer, BPE with byte_fallback and fuse_unk, decoder Replace("▁"," ") + ByteFallback
 * + Fuse + Strip(1 leading space), post-processor TemplateProcessing that prepends <s>. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "spx_synth.h"

#define META "\xE2\x96\x81"   /* U+2581, 3 bytes */
#define META_LEN 3
#define PIECE_MAX 64

/* Single-character pieces after "▁": ordered so a small vocabulary keeps the useful ones. */
static const char base_chars[] = "etaoinshrdlcumwfgypbvkjxqz"
                                 "TSAIHWOBMCLDNEFGPRYJKUVQXZ"
                                 "0123456789"
                                 ".,'\"!?-:;()";

/* Common English words, most frequent first: their "▁"-prefixes become merged pieces. */
static const char *const words[] = {
    "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "was", "on", "with", "he",
    "as", "you", "at", "be", "this", "have", "from", "by", "or", "one", "had", "not", "but",
    "what", "all", "were", "when", "we", "there", "can", "an", "your", "which", "their", "said",
    "if", "do", "will", "each", "about", "how", "up", "out", "them", "then", "she", "many",
    "some", "so", "these", "would", "other", "into", "has", "more", "her", "two", "like", "him",
    "see", "time", "could", "no", "make", "than", "first", "been", "its", "who", "now", "people",
    "my", "made", "over", "did", "down", "only", "way", "find", "use", "may", "water", "long",
    "little", "very", "after", "words", "called", "just", "where", "most", "know", "get",
    "through", "back", "much", "before", "go", "good", "new", "write", "our", "used", "me",
    "man", "too", "any", "day", "same", "right", "look", "think", "also", "around", "another",
    "came", "come", "work", "three", "word", "must", "because", "does", "part", "even", "place",
    "well", "such", "here", "take", "why", "things", "help", "put", "years", "different",
    "away", "again", "off", "went", "old", "number", "great", "tell", "men", "say", "small",
    "every", "found", "still", "between", "name", "should", "home", "big", "give", "air",
    "line", "set", "own", "under", "read", "last", "never", "us", "left", "end", "along",
    "while", "might", "next", "sound", "below", "saw", "something", "thought", "both", "few",
    "those", "always", "looked", "show", "large", "often", "together", "asked", "house",
    "world", "going", "want", "school", "important", "until", "form", "food", "keep",
    "children", "feet", "land", "side", "without", "boy", "once", "animals", "life", "enough",
    "took", "sometimes", "four", "head", "above", "kind", "began", "almost", "live", "page",
    "got", "earth", "need", "far", "hand", "high", "year", "mother", "light", "country",
    "father", "let", "night", "picture", "being", "study", "second", "soon", "story", "since",
    "white", "ever", "paper", "hard", "near", "sentence", "better", "best", "across", "during",
    "today", "however", "sure", "knew", "try", "told", "young", "sun", "whole", "hear", "table",
    "cat", "dog", "sat", "mat", "ran", "play", "happy", "friend", "tree", "bird", "sky",
};

/* Open-addressing set of piece strings (FNV-1a). */
typedef struct pset {
    char **slot;
    size_t cap;
} pset;

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static char **pset_find(pset *p, const char *s)
{
    size_t i = (size_t)(fnv(s) & (p->cap - 1));
    while (p->slot[i] && strcmp(p->slot[i], s) != 0)
        i = (i + 1) & (p->cap - 1);
    return &p->slot[i];
}

typedef struct tokgen {
    pset set;
    char **pieces;          /* [vocab] owned */
    uint32_t n, cap;
    cJSON *merges;          /* array of "a b" strings */
    int oom;
} tokgen;

/* Append a piece (if new and there is room); left/right non-NULL adds the merge "left right". */
static void add_piece(tokgen *g, const char *piece, const char *left, const char *right)
{
    if (g->oom || g->n >= g->cap)
        return;
    char **slot = pset_find(&g->set, piece);
    if (*slot)
        return;
    size_t len = strlen(piece) + 1;
    char *copy = malloc(len);
    if (!copy) {
        g->oom = 1;
        return;
    }
    memcpy(copy, piece, len);
    *slot = copy;
    g->pieces[g->n++] = copy;
    if (left) {
        char m[2 * PIECE_MAX + 2];
        snprintf(m, sizeof m, "%s %s", left, right);
        if (!cJSON_AddItemToArray(g->merges, cJSON_CreateString(m)))
            g->oom = 1;
    }
}

/* "▁" + word[0..k) for k = 1..len, each merged from its prefix and the next letter. */
static void add_word(tokgen *g, const char *word)
{
    char prev[PIECE_MAX], cur[PIECE_MAX], ch[2] = {0, 0};
    size_t wl = strlen(word);
    if (wl + META_LEN >= PIECE_MAX)
        return;
    memcpy(prev, META, META_LEN + 1);
    for (size_t k = 0; k < wl; k++) {
        memcpy(cur, prev, META_LEN + k);
        cur[META_LEN + k] = word[k];
        cur[META_LEN + k + 1] = '\0';
        ch[0] = word[k];
        add_piece(g, cur, prev, ch);
        memcpy(prev, cur, META_LEN + k + 2);
    }
}

/* "▁" + every lowercase string of length `len` in alphabetical order. */
static void add_level(tokgen *g, int len)
{
    char cur[PIECE_MAX], left[PIECE_MAX], ch[2] = {0, 0};
    int idx[8] = {0};
    while (g->n < g->cap && !g->oom) {
        memcpy(cur, META, META_LEN);
        for (int k = 0; k < len; k++)
            cur[META_LEN + k] = (char)('a' + idx[k]);
        cur[META_LEN + len] = '\0';
        memcpy(left, cur, (size_t)(META_LEN + len - 1));
        left[META_LEN + len - 1] = '\0';
        ch[0] = cur[META_LEN + len - 1];
        add_piece(g, cur, left, ch);
        int k = len - 1;
        while (k >= 0 && ++idx[k] == 26)
            idx[k--] = 0;
        if (k < 0)
            break;
    }
}

static int build_pieces(tokgen *g)
{
    char tmp[16];
    add_piece(g, "<unk>", NULL, NULL);
    add_piece(g, "<s>", NULL, NULL);
    add_piece(g, "</s>", NULL, NULL);
    for (int b = 0; b < 256; b++) {
        snprintf(tmp, sizeof tmp, "<0x%02X>", b);
        add_piece(g, tmp, NULL, NULL);
    }
    add_piece(g, META, NULL, NULL);
    for (const char *c = base_chars; *c; c++) {
        tmp[0] = *c;
        tmp[1] = '\0';
        add_piece(g, tmp, NULL, NULL);
    }
    /* merges only once every single character exists, so both parts are always in the vocab */
    if (g->n == 3 + 256 + 1 + (sizeof base_chars - 1)) {
        for (size_t w = 0; w < sizeof words / sizeof words[0]; w++)
            add_word(g, words[w]);
        for (int len = 1; len <= 4; len++)
            add_level(g, len);
    }
    return g->oom ? -1 : 0;
}

static cJSON *special_token(int id, const char *content)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddNumberToObject(t, "id", id);
    cJSON_AddStringToObject(t, "content", content);
    cJSON_AddBoolToObject(t, "single_word", 0);
    cJSON_AddBoolToObject(t, "lstrip", 0);
    cJSON_AddBoolToObject(t, "rstrip", 0);
    cJSON_AddBoolToObject(t, "normalized", 0);
    cJSON_AddBoolToObject(t, "special", 1);
    return t;
}

static cJSON *string_pattern(const char *type, const char *pattern, const char *content)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type);
    cJSON *p = cJSON_AddObjectToObject(o, "pattern");
    cJSON_AddStringToObject(p, "String", pattern);
    cJSON_AddStringToObject(o, "content", content);
    return o;
}

static cJSON *template_item(const char *kind, const char *id, int type_id)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *inner = cJSON_AddObjectToObject(o, kind);
    cJSON_AddStringToObject(inner, "id", id);
    cJSON_AddNumberToObject(inner, "type_id", type_id);
    return o;
}

static cJSON *typed(const char *type)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type);
    return o;
}

/* Everything but model.vocab / model.merges. cJSON tolerates NULL children on allocation failure
 * (the add fails); the caller checks the printed result. */
static cJSON *skeleton(void)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    cJSON_AddItemToArray(added, special_token(0, "<unk>"));
    cJSON_AddItemToArray(added, special_token(1, "<s>"));
    cJSON_AddItemToArray(added, special_token(2, "</s>"));

    cJSON *norm = cJSON_AddObjectToObject(root, "normalizer");
    cJSON_AddStringToObject(norm, "type", "Sequence");
    cJSON *norms = cJSON_AddArrayToObject(norm, "normalizers");
    cJSON *prepend = typed("Prepend");
    cJSON_AddStringToObject(prepend, "prepend", META);
    cJSON_AddItemToArray(norms, prepend);
    cJSON_AddItemToArray(norms, string_pattern("Replace", " ", META));
    cJSON_AddNullToObject(root, "pre_tokenizer");

    cJSON *post = cJSON_AddObjectToObject(root, "post_processor");
    cJSON_AddStringToObject(post, "type", "TemplateProcessing");
    cJSON *single = cJSON_AddArrayToObject(post, "single");
    cJSON_AddItemToArray(single, template_item("SpecialToken", "<s>", 0));
    cJSON_AddItemToArray(single, template_item("Sequence", "A", 0));
    cJSON *pair = cJSON_AddArrayToObject(post, "pair");
    cJSON_AddItemToArray(pair, template_item("SpecialToken", "<s>", 0));
    cJSON_AddItemToArray(pair, template_item("Sequence", "A", 0));
    cJSON_AddItemToArray(pair, template_item("SpecialToken", "<s>", 1));
    cJSON_AddItemToArray(pair, template_item("Sequence", "B", 1));
    cJSON *specials = cJSON_AddObjectToObject(post, "special_tokens");
    cJSON *bos = cJSON_AddObjectToObject(specials, "<s>");
    cJSON_AddStringToObject(bos, "id", "<s>");
    cJSON *ids = cJSON_AddArrayToObject(bos, "ids");
    cJSON_AddItemToArray(ids, cJSON_CreateNumber(1));
    cJSON *toks = cJSON_AddArrayToObject(bos, "tokens");
    cJSON_AddItemToArray(toks, cJSON_CreateString("<s>"));

    cJSON *dec = cJSON_AddObjectToObject(root, "decoder");
    cJSON_AddStringToObject(dec, "type", "Sequence");
    cJSON *decs = cJSON_AddArrayToObject(dec, "decoders");
    cJSON_AddItemToArray(decs, string_pattern("Replace", META, " "));
    cJSON_AddItemToArray(decs, typed("ByteFallback"));
    cJSON_AddItemToArray(decs, typed("Fuse"));
    cJSON *strip = typed("Strip");
    cJSON_AddStringToObject(strip, "content", " ");
    cJSON_AddNumberToObject(strip, "start", 1);
    cJSON_AddNumberToObject(strip, "stop", 0);
    cJSON_AddItemToArray(decs, strip);
    return root;
}

int spx_synth_tokenizer_json(spx_ctx *ctx, uint32_t vocab_size, char **json, size_t *len)
{
    int rc = 0;
    tokgen g = {0};
    cJSON *root = NULL;
    char *text = NULL;
    *json = NULL;
    *len = 0;
    if (vocab_size < SPX_SYNTH_MIN_VOCAB || vocab_size > SPX_SYNTH_MAX_VOCAB)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "tokenizer vocabulary size %u outside %u..%u", vocab_size,
                 SPX_SYNTH_MIN_VOCAB, SPX_SYNTH_MAX_VOCAB);
    g.cap = vocab_size;
    g.set.cap = 1;
    while (g.set.cap < 2 * (size_t)vocab_size)
        g.set.cap <<= 1;
    g.set.slot = calloc(g.set.cap, sizeof *g.set.slot);
    g.pieces = calloc(vocab_size, sizeof *g.pieces);
    g.merges = cJSON_CreateArray();
    root = skeleton();
    if (!g.set.slot || !g.pieces || !g.merges || !root || build_pieces(&g) < 0)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory building the tokenizer");
    if (g.n != vocab_size)
        SPX_FAIL(ctx, rc, SPX_E_INTERNAL, "tokenizer generator made %u pieces, want %u", g.n, vocab_size);

    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddStringToObject(model, "unk_token", "<unk>");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", 1);
    cJSON_AddBoolToObject(model, "byte_fallback", 1);
    cJSON_AddBoolToObject(model, "ignore_merges", 0);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    if (!vocab)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory building the tokenizer");
    for (uint32_t i = 0; i < g.n; i++)
        if (!cJSON_AddNumberToObject(vocab, g.pieces[i], (double)i))
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory building the tokenizer");
    cJSON_AddItemToObject(model, "merges", g.merges);
    g.merges = NULL;
    text = cJSON_Print(root);
    if (!text)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory printing the tokenizer");
    *len = strlen(text);
    *json = text;
    text = NULL;
done:
    free(text);
    cJSON_Delete(root);
    cJSON_Delete(g.merges);
    if (g.pieces) {
        for (uint32_t i = 0; i < g.n; i++)
            free(g.pieces[i]);
        free(g.pieces);
    }
    free(g.set.slot);
    return rc;
}

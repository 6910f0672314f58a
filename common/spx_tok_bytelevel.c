/* spx_tok_bytelevel.c: the GPT-2 byte-level pieces: the byte <-> unicode table and the
 * pre-tokenizer regex, implemented by hand:
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * The alternatives are tried in order at each position (leftmost-first, like the regex engine).
 * Character classes come from spx_tok_unicode.c (an approximation of \p{L}/\p{N}, see there).
 * Bytes that are not valid UTF-8 count as one "other" character each. */
#include "spx_tok_internal.h"

/* Printable bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) map to themselves; the other 68 bytes map
 * to 256, 257, ... in byte order. */
static int printable(unsigned b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

uint32_t spx_bytelevel_cp(unsigned char b)
{
    if (printable(b))
        return b;
    if (b <= 0x20)
        return 256u + b;                   /* 0x00..0x20 -> 256..288 */
    if (b <= 0xA0)
        return 289u + (uint32_t)(b - 0x7F); /* 0x7F..0xA0 -> 289..322 */
    return 323;                            /* 0xAD */
}

int spx_bytelevel_byte(uint32_t cp)
{
    if (cp < 256)
        return printable(cp) ? (int)cp : -1;
    if (cp <= 288)
        return (int)(cp - 256);
    if (cp <= 322)
        return (int)(cp - 289 + 0x7F);
    return cp == 323 ? 0xAD : -1;
}

enum { C_LETTER, C_NUMBER, C_SPACE, C_OTHER };

static int cls(const unsigned char *s, size_t n, size_t i, size_t *len)
{
    uint32_t cp;
    *len = spx_utf8_next(s + i, n - i, &cp);
    if (cp == 0xFFFFFFFFu)
        return C_OTHER;
    if (spx_uni_is_letter(cp))
        return C_LETTER;
    if (spx_uni_is_number(cp))
        return C_NUMBER;
    if (spx_uni_is_space(cp))
        return C_SPACE;
    return C_OTHER;
}

/* end of the run of characters of class c starting at i */
static size_t run(const unsigned char *s, size_t n, size_t i, int c)
{
    size_t l;
    while (i < n && cls(s, n, i, &l) == c)
        i += l;
    return i;
}

size_t spx_gpt2_match(const unsigned char *s, size_t n, size_t i)
{
    size_t l;
    /* contractions */
    if (s[i] == '\'' && i + 1 < n) {
        unsigned char a = s[i + 1];
        if (a == 's' || a == 't' || a == 'm' || a == 'd')
            return i + 2;
        if (i + 2 < n) {
            unsigned char b = s[i + 2];
            if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
                return i + 3;
        }
    }
    /* ' ?' followed by a letter / number / other run */
    size_t j = (s[i] == ' ' && i + 1 < n) ? i + 1 : i;
    int c = cls(s, n, j, &l);
    if (j > i && c == C_SPACE) {
        j = i;   /* the optional space cannot be used: the character after it is a space */
        c = C_SPACE;
    }
    if (c != C_SPACE)
        return run(s, n, j, c);
    /* whitespace: \s+(?!\S) takes the run minus its last character when a non-space follows */
    size_t end = i, last = i;
    while (end < n && cls(s, n, end, &l) == C_SPACE) {
        last = end;
        end += l;
    }
    if (end < n && last > i)
        return last;
    return end;
}

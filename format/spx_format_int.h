/* spx_format_int.h: helpers shared by the writer, the reader and the encoders (not public API).
 * Byte-order helpers read and write little-endian regardless of the host, through byte copies,
 * so they are safe on unaligned map pointers. */
#ifndef SPX_FORMAT_INT_H
#define SPX_FORMAT_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "spx_format.h"

static inline uint16_t spx_rd16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t spx_rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t spx_rd64(const unsigned char *p)
{
    return (uint64_t)spx_rd32(p) | ((uint64_t)spx_rd32(p + 4) << 32);
}
static inline void spx_wr16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v & 0xff);
    p[1] = (unsigned char)(v >> 8);
}
static inline void spx_wr32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)((v >> (8 * i)) & 0xff);
}
static inline void spx_wr64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)((v >> (8 * i)) & 0xff);
}

/* Header field offsets (spec section 4). */
enum {
    SPX_H_MAGIC = 0, SPX_H_MAJOR = 8, SPX_H_MINOR = 10, SPX_H_HSIZE = 12, SPX_H_REQ = 16,
    SPX_H_OPT = 24, SPX_H_FSIZE = 32, SPX_H_ALIGN = 40, SPX_H_COUNT = 44, SPX_H_TABLE = 48,
    SPX_H_MOFF = 56, SPX_H_MSIZE = 64, SPX_H_TCRC = 72, SPX_H_MCRC = 76, SPX_H_WRITER = 80,
    SPX_H_RESV = 112, SPX_H_HCRC = 124
};
/* Tensor record field offsets (spec section 5). */
enum {
    SPX_R_NAME = 0, SPX_R_DTYPE = 96, SPX_R_ENC = 97, SPX_R_NDIM = 98, SPX_R_NMN = 99,
    SPX_R_NMM = 100, SPX_R_RESV1 = 101, SPX_R_ROLE = 102, SPX_R_DIMS = 104, SPX_R_OFF = 136,
    SPX_R_SIZE = 144, SPX_R_NNZ = 152, SPX_R_CRC = 160, SPX_R_LAYER = 164, SPX_R_EXPERT = 168,
    SPX_R_RESV2 = 172
};
#define SPX_WRITER_FIELD 32
#define SPX_META_MIN_ENTRY 5u   /* u16 key_len + 1-byte key + u8 type + 1-byte BOOL */

/* CRC-32 (zlib crc32, seed 0) of any length (zlib takes uInt lengths: chunked). */
uint32_t spx_crc32(const void *buf, uint64_t len);
uint32_t spx_crc32_update(uint32_t crc, const void *buf, uint64_t len);

/* 1 when the n bytes are valid UTF-8 (no overlongs, surrogates or code points > U+10FFFF). */
int spx_utf8_valid(const unsigned char *s, size_t n);

/* NULL when `name` (n bytes, no NUL) is a valid tensor name, else a static reason. */
const char *spx_name_problem(const char *name, size_t n);
/* NULL when `key` (n bytes) is a valid metadata key, else a static reason. */
const char *spx_key_problem(const char *key, size_t n);

/* Byte size of a metadata scalar type, 0 for STR/ARR/unknown. */
size_t spx_meta_scalar_size(int type);

/* Record (de)serialisation. unpack does not validate. */
void spx_record_pack(const spx_tensor *t, unsigned char rec[SPX_RECORD_SIZE]);
void spx_record_unpack(const unsigned char rec[SPX_RECORD_SIZE], spx_tensor *t);

/* 1 when all n bytes are zero; *first gets the index of the first nonzero byte otherwise. */
int spx_all_zero(const unsigned char *p, uint64_t n, uint64_t *first);

/* Metadata table parsed by the reader (spx_meta.c). */
typedef struct spx_meta_table {
    spx_meta *items;
    size_t n;
    char *arena;          /* NUL-terminated keys and STR copies */
    uint64_t *offs;       /* element offsets of every ARR of STR, back to back */
} spx_meta_table;

/* Parse and validate the metadata section `p` (size bytes, at file offset base). */
int spx_meta_parse(spx_ctx *ctx, const char *label, const unsigned char *p, uint64_t size,
                   uint64_t base, spx_meta_table *out);
void spx_meta_table_free(spx_meta_table *m);

#endif

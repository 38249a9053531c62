/* checksum.h - CRC32 (IEEE 802.3, the zlib/PNG polynomial) and FNV-1a 64.
 *
 * Why here: token shards carry a CRC32 of their payload so a truncated or
 * bit-flipped file is caught before training on it, and a 64-bit FNV-1a hash
 * of the tokenizer's vocab.txt so shards made with another tokenizer are
 * refused. Both are tiny, dependency-free and bit-compatible with Python's
 * zlib.crc32 and a three-line Python FNV-1a, which the tests use as oracles. */
#ifndef CRAM_CHECKSUM_H
#define CRAM_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* Running CRC32: start with crc = 0, feed any number of chunks; the value
 * returned after the last chunk equals zlib.crc32(all bytes). */
uint32_t cram_crc32(uint32_t crc, const void *data, size_t n);

#define CRAM_FNV1A64_INIT 0xcbf29ce484222325ull
/* Running FNV-1a 64: start with h = CRAM_FNV1A64_INIT. */
uint64_t cram_fnv1a64(uint64_t h, const void *data, size_t n);

#endif
